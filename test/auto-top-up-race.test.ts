/**
 * Auto top-up on two instances of one database, under racing requests: every instance is told of
 * a fall below the level and tries to claim it; exactly one purchase is made per fall, and a
 * short start racing the others buys first at most as the cap allows.
 */
import type { SandboxProvider } from '../src/modules/billing/sandbox-provider';
import { SetAutoTopUpDocument, StartGenerationDocument, type GenerationSettingsInput } from './graphql/generated';
import { balanceOf, openAccount } from './helpers/accounts';
import { eventually, startTestApp, useTestApp, type TestApp } from './helpers/test-app';

const t = useTestApp({ SIMULATED_WORKER: '0' });
let other: TestApp;

beforeAll(async () => {
  other = await startTestApp({ SIMULATED_WORKER: '0' }, t.app.databaseUrl);
});
afterAll(async () => {
  await other?.stop();
});

const IMAGES = (count: number): GenerationSettingsInput => ({ type: 'IMAGE', imageQuality: 'STANDARD', count }); // 1 credit each

/** `n` starts of `sub`, all at once, alternating between the two instances. */
function race(sub: string, n: number, settings: GenerationSettingsInput) {
  return Promise.all(
    Array.from({ length: n }, (_, i) => (i % 2 ? other : t.app).gql(StartGenerationDocument, { input: { settings, prompt: `race ${i}` } }, { sub })),
  );
}

async function automatic(sub: string) {
  return t.app.rows<{ status: string }>('SELECT status FROM purchases WHERE account_id = $1 AND automatic', [sub]);
}

async function settled(sub: string): Promise<void> {
  await eventually(async () => (await t.app.one<{ busy: boolean }>('SELECT requested_at IS NOT NULL OR purchase_id IS NOT NULL AS busy FROM auto_top_ups WHERE account_id = $1', [sub]))?.busy === false);
}

/** Payments the sandbox made for the account, across both instances (its own table, keyed as Stripe is). */
async function payments(sub: string): Promise<number> {
  return (await t.app.one<{ n: number }>(`SELECT count(*)::int AS n FROM sandbox_payments WHERE account_id = $1 AND kind = 'charge'`, [sub])).n;
}

describe('auto top-up across two instances', () => {
  it('buys exactly once when 50 racing debits on two instances cross the level', async () => {
    for (const sub of ['racer-1', 'racer-2', 'racer-3']) {
      await openAccount(t.app, sub, { balance: 60 });
      const set = await t.app.gql(SetAutoTopUpDocument, { input: { packCode: 'STARTER', belowCredits: 40, maxPerMonth: 31 } }, { sub });
      expect(set.data!.setAutoTopUp.userErrors).toEqual([]);
    }
    // 60 − 50 debits of 1 credit: the 21st falls below 40 (39), and the pack's 50 keep the balance
    // above the level for every debit after it, whenever it lands: one fall, one purchase.
    const results = await Promise.all(['racer-1', 'racer-2', 'racer-3'].map((sub) => race(sub, 50, IMAGES(1))));
    for (const [i, sub] of ['racer-1', 'racer-2', 'racer-3'].entries()) {
      expect(results[i].filter((r) => r.data?.startGeneration.job?.status === 'QUEUED').length).toBe(50);
      await eventually(async () => (await balanceOf(t.app, sub)) === 60);
      await settled(sub);
      expect(await automatic(sub)).toEqual([{ status: 'COMPLETED' }]);
      expect(await payments(sub)).toBe(1);
      const kinds = await t.app.rows<{ kind: string; n: number }>('SELECT kind, count(*)::int AS n FROM ledger_entries WHERE account_id = $1 GROUP BY kind ORDER BY kind', [sub]);
      expect(kinds).toEqual([{ kind: 'ADJUSTMENT', n: 1 }, { kind: 'DEBIT', n: 50 }, { kind: 'GRANT', n: 2 }]); // sign-up and the pack
    }
    // Both instances were told of each fall; the one that did not claim it found nothing to do.
    const charged = [t.app, other].map((app) => (app.server.services.payments as SandboxProvider).charges.size);
    expect(charged[0] + charged[1]).toBe(3);
  });

  it('racing short starts on two instances buy one pack and are all accepted', async () => {
    await openAccount(t.app, 'short-racer', { balance: 5 });
    await t.app.gql(SetAutoTopUpDocument, { input: { packCode: 'STARTER', belowCredits: 10, maxPerMonth: 1 } }, { sub: 'short-racer' });
    const results = await race('short-racer', 10, IMAGES(4)); // 40 credits: 5 + 50 covers them all
    expect(results.map((r) => r.data?.startGeneration.userErrors)).toEqual(Array(10).fill([]));
    await settled('short-racer');
    expect(await automatic('short-racer')).toEqual([{ status: 'COMPLETED' }]);
    expect(await payments('short-racer')).toBe(1);
    expect(await balanceOf(t.app, 'short-racer')).toBe(15);
  });
});
