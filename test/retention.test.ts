/**
 * Retention (issue 13, part 4): idempotency records live for the replay window
 * (IDEMPOTENCY_RETENTION_HOURS, at least 24) and then go; quotes no job was started from go a
 * while after they expire; nothing of the ledger is ever deleted.
 */
import type { SandboxProvider } from '../src/modules/billing/sandbox-provider';
import { advanceDays, openAccount } from './helpers/accounts';
import { useTestApp } from './helpers/test-app';

const t = useTestApp({ TEST_CLOCK: '1', JOB_SWEEP_INTERVAL_MS: '3600000', IDEMPOTENCY_RETENTION_HOURS: '48', QUOTE_RETENTION_HOURS: '24' });

const count = async (sql: string, params: unknown[] = []) => Number((await t.app.one<{ n: string }>(sql, params)).n);
const buy = (key: string) =>
  t.app.raw<{ purchaseCreditPack: { purchase: { id: string } } }>(`mutation { purchaseCreditPack(input: { packCode: "STARTER", idempotencyKey: "${key}" }) { purchase { id } } }`, undefined, { sub: 'keeper' });

describe('retention', () => {
  it('replays a key inside the replay window, forgets it after, and keeps the ledger', async () => {
    await openAccount(t.app, 'keeper');
    const first = (await buy('once')).data!.purchaseCreditPack.purchase.id;
    await advanceDays(t.app, 1); // 24 h: inside the 48 h window
    expect((await buy('once')).data!.purchaseCreditPack.purchase.id).toBe(first);
    expect(await count(`SELECT count(*) AS n FROM idempotency_keys WHERE key = 'once'`)).toBe(1);
    const entries = await count(`SELECT count(*) AS n FROM ledger_entries WHERE account_id = 'keeper'`);
    await advanceDays(t.app, 1.5); // 60 h: past the window; the sweep ran with the clock
    expect(await count(`SELECT count(*) AS n FROM idempotency_keys WHERE key = 'once'`)).toBe(0);
    expect(await count(`SELECT count(*) AS n FROM ledger_entries WHERE account_id = 'keeper'`)).toBe(entries);
    // After the window the same key is a new request.
    expect((await buy('once')).data!.purchaseCreditPack.purchase.id).not.toBe(first);
  });

  it('deletes quotes a day after they expire unless a job was started from them', async () => {
    await openAccount(t.app, 'quoter', { balance: 50 });
    const quote = async () => (await t.app.raw<{ quote: { id: string } }>('{ quote(settings: { type: IMAGE, imageQuality: STANDARD }) { id } }', undefined, { sub: 'quoter' })).data!.quote.id;
    const idle = await quote();
    const used = await quote();
    const started = await t.app.raw<{ startGeneration: { job: { id: string } } }>(
      `mutation { startGeneration(input: { settings: { type: IMAGE, imageQuality: STANDARD }, prompt: "p", quoteId: "${used}" }) { job { id } } }`, undefined, { sub: 'quoter' });
    expect(started.errors).toBeUndefined();
    await advanceDays(t.app, 0.5); // expired, not yet a day ago
    expect(await count('SELECT count(*) AS n FROM quotes WHERE id = ANY($1)', [[idle, used]])).toBe(2);
    await advanceDays(t.app, 1); // expired more than 24 h ago
    expect(await count('SELECT count(*) AS n FROM quotes WHERE id = $1', [idle])).toBe(0);
    expect(await count('SELECT count(*) AS n FROM quotes WHERE id = $1', [used])).toBe(1);
    expect((await t.app.raw<{ job: { quoteId: string } }>(`{ job(id: "${started.data!.startGeneration.job.id}") { quoteId } }`, undefined, { sub: 'quoter' })).data!.job.quoteId).toBe(used);
  });

  it('answers IDEMPOTENCY_KEY_REUSED, charging nothing, for a plan change whose key was first used before the replay window', async () => {
    await openAccount(t.app, 'late-retrier');
    const change = () => t.app.raw<{ changePlan: { purchase: { id: string } | null; userErrors: { code: string; message: string; field: string[] }[] } }>(
      'mutation { changePlan(input: { tier: PRO, interval: MONTHLY, idempotencyKey: "to-pro" }) { purchase { id } userErrors { code message field } } }', undefined, { sub: 'late-retrier' });
    const first = (await change()).data!.changePlan;
    expect(first.userErrors).toEqual([]);
    const purchases = () => count(`SELECT count(*) AS n FROM purchases WHERE account_id = 'late-retrier'`);
    expect(await purchases()).toBe(1);
    // The renewal fails: the plan is PAST_DUE, so the same change would be a new upgrade.
    (t.app.server.services.payments as SandboxProvider).failNext(1, 'card declined', 'late-retrier');
    await advanceDays(t.app, 32); // past the 48 h window
    expect((await change()).data!.changePlan).toEqual({
      purchase: null,
      userErrors: [{ code: 'IDEMPOTENCY_KEY_REUSED', message: 'This idempotency key was used before the replay window; send a new key for a new request', field: ['input', 'idempotencyKey'] }],
    });
    expect(await purchases()).toBe(1); // nothing new
  });
});
