/**
 * Accounts as tests set them up and read them back, through the API wherever the API can: opened
 * by a first request, put on a tier by changePlan (the sandbox provider, the default in tests,
 * completes it at once), given a balance by an admin adjustment. The sign-up credits are the
 * catalog's, read once, so no test carries their number.
 */
import { Role } from '../../src/common/auth/role.enum';
import {
  AdjustCreditsDocument,
  AdvanceTestClockDocument,
  ChangePlanDocument,
  MeDocument,
  type BillingInterval,
  type TierCode,
} from '../graphql/generated';
import type { TestApp } from './test-app';

/** The operator the tests act as. */
export const ADMIN = { sub: 'ops', role: Role.ADMIN };

const signups = new Map<string, Promise<number>>();

/**
 * The credits a new account gets: the FREE tier's signupCredits in the catalog, asked of the
 * service at `graphqlUrl` (a test app's url, or a service process's) once.
 */
export function signupCreditsAt(graphqlUrl: string): Promise<number> {
  let credits = signups.get(graphqlUrl);
  if (!credits) {
    credits = (async () => {
      const res = await fetch(graphqlUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ tiers { code signupCredits } }' }) });
      const body = (await res.json()) as { data?: { tiers: { code: string; signupCredits: number }[] }; errors?: unknown };
      const free = body.data?.tiers.find((t) => t.code === 'FREE');
      if (!free) throw new Error(`the catalog has no FREE tier: ${JSON.stringify(body)}`);
      return free.signupCredits;
    })();
    signups.set(graphqlUrl, credits);
    credits.catch(() => signups.delete(graphqlUrl)); // a service not up yet: ask again next time
  }
  return credits;
}

/** The credits a new account of `app` gets (the catalog's), read once. */
export function signupCredits(app: TestApp): Promise<number> {
  return signupCreditsAt(app.url);
}

/**
 * Opens `sub`'s account with a first request; when given, puts it on `tier` (changePlan, paid at
 * once by the sandbox) and then makes its balance `balance` (an admin adjustment). Answers the balance.
 */
export async function openAccount(app: TestApp, sub: string, opts: { tier?: TierCode; interval?: BillingInterval; balance?: number } = {}): Promise<number> {
  const me = await app.gql(MeDocument, {}, { sub });
  expect(me.errors).toBeUndefined();
  let available = me.data!.me.balance.available;
  if (opts.tier && opts.tier !== 'FREE') {
    const out = (await changePlan(app, sub, opts.tier, opts.interval)).data!.changePlan;
    expect(out.userErrors).toEqual([]);
    expect(out.purchase).toMatchObject({ status: 'COMPLETED', tier: opts.tier });
    available = out.balance!.available;
  }
  if (opts.balance !== undefined && opts.balance !== available) {
    const r = await adjustCredits(app, sub, opts.balance - available, { reason: 'test setup' });
    expect(r.data!.adjustCredits.userErrors).toEqual([]);
    available = r.data!.adjustCredits.balance!.available;
  }
  return available;
}

export function changePlan(app: TestApp, sub: string, tier: TierCode, interval: BillingInterval = 'MONTHLY', idempotencyKey?: string) {
  return app.gql(ChangePlanDocument, { input: { tier, interval, idempotencyKey } }, { sub });
}

/** An admin's adjustment of `accountId`'s balance by `amount`. */
export function adjustCredits(app: TestApp, accountId: string, amount: number, opts: { reason?: string; idempotencyKey?: string } = {}) {
  return app.gql(AdjustCreditsDocument, { input: { accountId, amount, reason: opts.reason ?? 'test adjustment', idempotencyKey: opts.idempotencyKey } }, ADMIN);
}

/** The account's available balance, as the database holds it. */
export async function balanceOf(app: TestApp, sub: string): Promise<number> {
  return (await app.one<{ available: number }>('SELECT available FROM accounts WHERE id = $1', [sub])).available;
}

/** Moves the test clock (TEST_CLOCK=1) on by `days`, running what fell due. */
export async function advanceDays(app: TestApp, days: number): Promise<void> {
  const r = await app.gql(AdvanceTestClockDocument, { hours: days * 24 }, ADMIN);
  expect(r.errors).toBeUndefined();
}
