#!/usr/bin/env bash
# Runs the time-driven suites with the service clock started at several fixed instants (a leap
# day, the last day of 31- and 30-day months, a year's end, today's date of writing), to show
# that they give the same result on every date. Usage: scripts/time-matrix.sh [instant ...]
# (DATABASE_URL to use another PostgreSQL; by default the embedded one, as npm test).
set -uo pipefail
cd "$(dirname "$0")/.."
instants=("$@")
if [ ${#instants[@]} -eq 0 ]; then
  instants=(2024-02-29T12:00:00Z 2024-02-28T23:30:00Z 2025-01-31T18:00:00Z 2025-04-30T23:45:00Z 2026-12-01T00:00:00Z 2027-12-31T23:00:00Z)
fi
suites=(test/plans.test.ts test/refunds.test.ts test/plan-calendar.test.ts test/purchases.test.ts test/generations.test.ts test/pricing.test.ts
  test/stripe-plans.test.ts test/stripe.test.ts test/stripe-reversals.test.ts test/plan-policy.test.ts test/warnings.test.ts test/ledger.test.ts test/clock.test.ts
  test/reliability/debit-storm.test.ts test/reliability/model.test.ts test/reliability/idempotency.test.ts)
failed=0
for at in "${instants[@]}"; do
  if TEST_CLOCK_START="$at" npx jest "${suites[@]}" > "/tmp/time-matrix-$at.log" 2>&1; then
    echo "$at: $(grep -E '^Tests:' "/tmp/time-matrix-$at.log")"
  else
    echo "$at: FAILED ($(grep -E '^Tests:' "/tmp/time-matrix-$at.log")), see /tmp/time-matrix-$at.log"
    failed=1
  fi
done
exit $failed
