/**
 * A fall below the auto top-up level is told to every instance by an event. One told while an
 * instance's event listener was away (the database restarted, its connection dropped) is bought
 * when the listener is back, not at the next timed sweep (here an hour away).
 */
import { SetAutoTopUpDocument } from './graphql/generated';
import { balanceOf, openAccount } from './helpers/accounts';
import { eventually, useTestApp } from './helpers/test-app';

const t = useTestApp({ JOB_SWEEP_INTERVAL_MS: '3600000' });

it('buys a fall that was asked for while the event listener was away as soon as the listener reconnects', async () => {
  await openAccount(t.app, 'while-away', { balance: 30 });
  const set = await t.app.gql(SetAutoTopUpDocument, { input: { packCode: 'STARTER', belowCredits: 40, maxPerMonth: 2 } }, { sub: 'while-away' });
  expect(set.data!.setAutoTopUp.userErrors).toEqual([]);
  // As a debit's commit leaves it when its event reached no listener: asked for, nobody told.
  await t.app.audit.query(`UPDATE auto_top_ups SET requested_at = now() WHERE account_id = 'while-away'`);
  const { rows } = await t.app.audit.query<{ n: number }>(
    `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'credits-events'`,
  );
  expect(rows[0].n).toBe(1);
  await eventually(async () => (await balanceOf(t.app, 'while-away')) === 80, 10_000);
  const bought = await t.app.rows('SELECT status, credits FROM purchases WHERE account_id = $1 AND automatic', ['while-away']);
  expect(bought).toEqual([{ status: 'COMPLETED', credits: 50 }]);
  expect(await t.app.one('SELECT requested_at, purchase_id FROM auto_top_ups WHERE account_id = $1', ['while-away'])).toEqual({ requested_at: null, purchase_id: null });
});
