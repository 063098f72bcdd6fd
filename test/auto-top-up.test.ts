/**
 * Auto top-up on the sandbox provider: one pack per fall below the level (the debit asks in its
 * transaction, an instance buys after commit), the monthly cap, buy-first for a short start,
 * three failures in a row turning it off, and the settings' own rules.
 */
import type { SandboxProvider } from '../src/modules/billing/sandbox-provider';
import {
  AdvanceTestClockDocument,
  DisableAutoTopUpDocument,
  MyAutoTopUpDocument,
  QuoteDocument,
  SetAutoTopUpDocument,
  StartGenerationDocument,
  type GenerationSettingsInput,
} from './graphql/generated';
import { ADMIN, adjustCredits, advanceDays, balanceOf, openAccount } from './helpers/accounts';
import { notesOf } from './helpers/notices';
import { ledgerViolations } from './helpers/invariants';
import { eventually, useTestApp } from './helpers/test-app';

const t = useTestApp({ TEST_CLOCK: '1' });
const sandbox = () => t.app.server.services.payments as SandboxProvider;
const IMAGES = (count: number): GenerationSettingsInput => ({ type: 'IMAGE', imageQuality: 'STANDARD', count }); // 1 credit each

function setAutoTopUp(sub: string, input: { packCode: string; belowCredits: number; maxPerMonth: number; workspaceId?: string }) {
  return t.app.gql(SetAutoTopUpDocument, { input }, { sub });
}

function start(sub: string, settings: GenerationSettingsInput, idempotencyKey?: string) {
  return t.app.gql(StartGenerationDocument, { input: { settings, prompt: 'a lighthouse', idempotencyKey } }, { sub });
}

async function autoTopUp(sub: string) {
  return (await t.app.gql(MyAutoTopUpDocument, {}, { sub })).data!.me.autoTopUp;
}

/** The account's automatic purchases, oldest first. */
async function automatic(sub: string) {
  return t.app.rows<{ status: string; pack_code: string; credits: number; failure_reason: string | null }>(
    'SELECT status, pack_code, credits, failure_reason FROM purchases WHERE account_id = $1 AND automatic ORDER BY created_at, id', [sub]);
}

/** Waits until nothing is asked or in flight for the account: every fall so far was bought (or refused). */
async function settled(sub: string): Promise<void> {
  await eventually(async () => {
    const r = await t.app.one<{ busy: boolean }>('SELECT requested_at IS NOT NULL OR purchase_id IS NOT NULL AS busy FROM auto_top_ups WHERE account_id = $1', [sub]);
    return r !== undefined && !r.busy;
  });
}

describe('auto top-up (sandbox provider)', () => {
  it('buys its pack once when a change leaves the balance below the level, and says so', async () => {
    await openAccount(t.app, 'auto-1', { balance: 30 });
    const set = (await setAutoTopUp('auto-1', { packCode: 'STARTER', belowCredits: 20, maxPerMonth: 3 })).data!.setAutoTopUp;
    expect(set.userErrors).toEqual([]);
    expect(set.autoTopUp).toEqual({ enabled: true, packCode: 'STARTER', belowCredits: 20, maxPerMonth: 3, purchasesThisMonth: 0, failedAttempts: 0, lastPurchaseAt: null });
    expect(await automatic('auto-1')).toEqual([]); // setting it buys nothing by itself

    await adjustCredits(t.app, 'auto-1', -10); // 20: not below 20
    await settled('auto-1');
    expect(await automatic('auto-1')).toEqual([]);

    await adjustCredits(t.app, 'auto-1', -5); // 15: below
    await eventually(async () => (await balanceOf(t.app, 'auto-1')) === 65);
    await settled('auto-1');
    expect(await automatic('auto-1')).toEqual([{ status: 'COMPLETED', pack_code: 'STARTER', credits: 50, failure_reason: null }]);
    const me = (await t.app.gql(MyAutoTopUpDocument, {}, { sub: 'auto-1' })).data!.me;
    const bought = await t.app.one<{ completed_at: Date }>('SELECT completed_at FROM purchases WHERE account_id = $1 AND automatic', ['auto-1']);
    expect(me.autoTopUp).toMatchObject({ enabled: true, purchasesThisMonth: 1, failedAttempts: 0, lastPurchaseAt: bought.completed_at.toISOString() });
    expect(me.purchases.edges.map((e) => [e.node.packCode, e.node.status, e.node.automatic])).toEqual([['STARTER', 'COMPLETED', true]]);
    expect(await notesOf(t.app, 'auto-1', ['AUTO_TOP_UP_COMPLETED', 'PURCHASE_COMPLETED'])).toEqual([
      { kind: 'AUTO_TOP_UP_COMPLETED', message: 'Auto top-up: 50 credits from the STARTER pack were added for 5.00 USD, charged to your saved payment method; they never expire.' },
    ]);
    const grant = await t.app.one('SELECT kind, amount FROM ledger_entries WHERE account_id = $1 ORDER BY id DESC LIMIT 1', ['auto-1']);
    expect(grant).toEqual({ kind: 'GRANT', amount: 50 });

    await adjustCredits(t.app, 'auto-1', 10); // a rise buys nothing
    await adjustCredits(t.app, 'auto-1', -30); // 45: still above the level
    await settled('auto-1');
    expect((await automatic('auto-1')).length).toBe(1);
  });

  it('makes at most maxPerMonth automatic purchases in a UTC calendar month, and buys again the next month', async () => {
    await openAccount(t.app, 'capped', { balance: 30 });
    await setAutoTopUp('capped', { packCode: 'STARTER', belowCredits: 20, maxPerMonth: 2 });
    for (let fall = 1; fall <= 3; fall++) {
      const before = await balanceOf(t.app, 'capped');
      await adjustCredits(t.app, 'capped', -(before - 15)); // to 15, below 20
      await settled('capped');
    }
    // Two falls bought (15 + 50 = 65 each time); the third was over the cap.
    expect((await automatic('capped')).map((p) => p.status)).toEqual(['COMPLETED', 'COMPLETED']);
    expect(await balanceOf(t.app, 'capped')).toBe(15);
    expect(await autoTopUp('capped')).toMatchObject({ enabled: true, purchasesThisMonth: 2 });

    await advanceDays(t.app, 1); // 2025-02-01T18:00Z: a new month
    expect(await autoTopUp('capped')).toMatchObject({ purchasesThisMonth: 0 });
    await adjustCredits(t.app, 'capped', -1); // 14: still below, and falling
    await eventually(async () => (await balanceOf(t.app, 'capped')) === 64);
    await settled('capped');
    expect((await automatic('capped')).length).toBe(3);
    const last = (await autoTopUp('capped'))!;
    expect(last.purchasesThisMonth).toBe(1);
    expect(last.lastPurchaseAt! >= '2025-02-01T18:00:00.000Z').toBe(true);
  });

  it('buys first for a short start and accepts the job in the same call', async () => {
    await openAccount(t.app, 'short', { balance: 3 });
    await setAutoTopUp('short', { packCode: 'STARTER', belowCredits: 10, maxPerMonth: 5 });
    const out = (await start('short', IMAGES(4))).data!.startGeneration;
    expect(out.userErrors).toEqual([]);
    expect(out.job).toMatchObject({ status: 'QUEUED', credits: 4 });
    expect(out.balance).toEqual({ available: 49 }); // 3 + 50 − 4
    await settled('short');
    expect(await automatic('short')).toEqual([{ status: 'COMPLETED', pack_code: 'STARTER', credits: 50, failure_reason: null }]);
    const entries = await t.app.rows('SELECT kind, amount FROM ledger_entries WHERE account_id = $1 ORDER BY id DESC LIMIT 2', ['short']);
    expect(entries).toEqual([{ kind: 'DEBIT', amount: -4 }, { kind: 'GRANT', amount: 50 }]);
  });

  it('a keyed start that bought first answers the same job when retried, and buys nothing more', async () => {
    await openAccount(t.app, 'short-keyed', { balance: 2 });
    await setAutoTopUp('short-keyed', { packCode: 'STARTER', belowCredits: 10, maxPerMonth: 5 });
    const first = (await start('short-keyed', IMAGES(3), 'k-1')).data!.startGeneration;
    const again = (await start('short-keyed', IMAGES(3), 'k-1')).data!.startGeneration;
    expect(first.userErrors).toEqual([]);
    expect(again.job!.id).toBe(first.job!.id);
    expect(again.balance).toEqual({ available: 49 });
    expect((await automatic('short-keyed')).length).toBe(1);
    expect(await balanceOf(t.app, 'short-keyed')).toBe(49);
  });

  it('refuses a short start as before when the pack does not cover the shortfall, buying nothing', async () => {
    await openAccount(t.app, 'big-job', { tier: 'PRO', balance: 0 });
    await setAutoTopUp('big-job', { packCode: 'STARTER', belowCredits: 10, maxPerMonth: 5 });
    const video: GenerationSettingsInput = { type: 'VIDEO', durationSeconds: 60, videoQuality: 'PREMIUM' };
    const cost = (await t.app.gql(QuoteDocument, { settings: video }, { sub: 'big-job' })).data!.quote.credits;
    expect(cost).toBeGreaterThan(50); // more than the STARTER pack gives
    const out = (await start('big-job', video)).data!.startGeneration;
    expect(out.userErrors.map((e) => e.code)).toEqual(['INSUFFICIENT_CREDITS']);
    expect(out.job).toBeNull();
    expect(await automatic('big-job')).toEqual([]);
    expect(await balanceOf(t.app, 'big-job')).toBe(0);
  });

  it('refuses a short start when the month is at its cap, buying nothing', async () => {
    await openAccount(t.app, 'short-capped', { balance: 30 });
    await setAutoTopUp('short-capped', { packCode: 'STARTER', belowCredits: 20, maxPerMonth: 1 });
    await adjustCredits(t.app, 'short-capped', -15); // 15: bought once (65)
    await settled('short-capped');
    await adjustCredits(t.app, 'short-capped', -64); // 1
    await settled('short-capped');
    const out = (await start('short-capped', IMAGES(4))).data!.startGeneration;
    expect(out.userErrors.map((e) => e.code)).toEqual(['INSUFFICIENT_CREDITS']);
    expect((await automatic('short-capped')).length).toBe(1);
    expect(await balanceOf(t.app, 'short-capped')).toBe(1);
  });

  it('counts failures, tells the user each time, and turns itself off after three in a row', async () => {
    await openAccount(t.app, 'declined', { balance: 100 });
    await setAutoTopUp('declined', { packCode: 'CREATOR', belowCredits: 50, maxPerMonth: 10 });
    sandbox().failNext(3, 'card declined', 'declined');
    for (const to of [40, 30, 20, 10]) {
      await adjustCredits(t.app, 'declined', to - (await balanceOf(t.app, 'declined')));
      await settled('declined');
    }
    // Three falls tried and failed; the fourth found auto top-up off.
    expect((await automatic('declined')).map((p) => [p.status, p.failure_reason])).toEqual([
      ['FAILED', 'card declined'], ['FAILED', 'card declined'], ['FAILED', 'card declined'],
    ]);
    expect(await balanceOf(t.app, 'declined')).toBe(10);
    expect(await autoTopUp('declined')).toMatchObject({ enabled: false, failedAttempts: 3, purchasesThisMonth: 0, lastPurchaseAt: null });
    expect(await notesOf(t.app, 'declined', ['AUTO_TOP_UP_FAILED'])).toEqual([
      { kind: 'AUTO_TOP_UP_FAILED', message: 'Auto top-up could not buy the CREATOR pack: card declined. It tries again the next time your balance falls below your level (failure 1 of 3 before it turns itself off).' },
      { kind: 'AUTO_TOP_UP_FAILED', message: 'Auto top-up could not buy the CREATOR pack: card declined. It tries again the next time your balance falls below your level (failure 2 of 3 before it turns itself off).' },
      { kind: 'AUTO_TOP_UP_FAILED', message: 'Auto top-up could not buy the CREATOR pack: card declined. That was 3 failures in a row, so auto top-up is now off; turn it on again once your payment method works.' },
    ]);
    // Turned on again: the count starts over, and the next fall buys.
    const again = (await setAutoTopUp('declined', { packCode: 'CREATOR', belowCredits: 50, maxPerMonth: 10 })).data!.setAutoTopUp;
    expect(again.autoTopUp).toMatchObject({ enabled: true, failedAttempts: 0 });
    await adjustCredits(t.app, 'declined', -1);
    await eventually(async () => (await balanceOf(t.app, 'declined')) === 209);
    await settled('declined');
  });

  it('a success clears the failure count', async () => {
    await openAccount(t.app, 'flaky', { balance: 100 });
    await setAutoTopUp('flaky', { packCode: 'STARTER', belowCredits: 50, maxPerMonth: 10 });
    sandbox().failNext(2, 'card declined', 'flaky');
    for (const to of [40, 30, 20]) {
      await adjustCredits(t.app, 'flaky', to - (await balanceOf(t.app, 'flaky')));
      await settled('flaky');
    }
    expect((await automatic('flaky')).map((p) => p.status)).toEqual(['FAILED', 'FAILED', 'COMPLETED']);
    expect(await autoTopUp('flaky')).toMatchObject({ enabled: true, failedAttempts: 0, purchasesThisMonth: 1 });
    expect(await balanceOf(t.app, 'flaky')).toBe(70);
  });

  it('disableAutoTopUp stops it buying and keeps the settings', async () => {
    expect((await t.app.gql(DisableAutoTopUpDocument, {}, { sub: 'never-set' })).data!.disableAutoTopUp).toEqual({ autoTopUp: null, userErrors: [] });
    await openAccount(t.app, 'off', { balance: 30 });
    await setAutoTopUp('off', { packCode: 'PRO', belowCredits: 20, maxPerMonth: 4 });
    const off = (await t.app.gql(DisableAutoTopUpDocument, {}, { sub: 'off' })).data!.disableAutoTopUp;
    expect(off).toEqual({ autoTopUp: { enabled: false, packCode: 'PRO', belowCredits: 20, maxPerMonth: 4, purchasesThisMonth: 0, failedAttempts: 0, lastPurchaseAt: null }, userErrors: [] });
    await adjustCredits(t.app, 'off', -27);
    const short = (await start('off', IMAGES(4))).data!.startGeneration; // 3 left: short, and no buy-first either
    expect(short.job).toBeNull();
    expect(await automatic('off')).toEqual([]);
    expect(await t.app.one('SELECT requested_at FROM auto_top_ups WHERE account_id = $1', ['off'])).toEqual({ requested_at: null });
  });

  it('refuses bad settings with a clear error and changes nothing', async () => {
    await openAccount(t.app, 'bad-settings');
    const unknown = (await setAutoTopUp('bad-settings', { packCode: 'MEGA', belowCredits: 20, maxPerMonth: 2 })).data!.setAutoTopUp;
    expect(unknown).toEqual({ autoTopUp: null, userErrors: [{ code: 'NOT_FOUND', message: 'No credit pack "MEGA" is on sale; see creditPacks', field: ['input', 'packCode'] }] });
    const workspace = (await setAutoTopUp('bad-settings', { packCode: 'STARTER', belowCredits: 20, maxPerMonth: 2, workspaceId: 'ws-1' })).data!.setAutoTopUp;
    expect(workspace.userErrors).toEqual([{ code: 'NOT_FOUND', message: 'No workspace of yours has this id', field: ['input', 'workspaceId'] }]);
    const disableWs = (await t.app.gql(DisableAutoTopUpDocument, { workspaceId: 'ws-1' }, { sub: 'bad-settings' })).data!.disableAutoTopUp;
    expect(disableWs.userErrors).toEqual([{ code: 'NOT_FOUND', message: 'No workspace of yours has this id', field: ['workspaceId'] }]);
    for (const [input, message, field] of [
      [{ packCode: 'STARTER', belowCredits: 20, maxPerMonth: 0 }, 'input.maxPerMonth must not be less than 1', 'maxPerMonth'],
      [{ packCode: 'STARTER', belowCredits: 20, maxPerMonth: 32 }, 'input.maxPerMonth must not be greater than 31', 'maxPerMonth'],
      [{ packCode: 'STARTER', belowCredits: 0, maxPerMonth: 2 }, 'input.belowCredits must not be less than 1', 'belowCredits'],
    ] as const) {
      const res = await setAutoTopUp('bad-settings', input);
      expect(res.errors!.map((e) => [e.extensions!.code, e.message, e.extensions!.field])).toEqual([['BAD_USER_INPUT', message, ['input', field]]]);
    }
    expect(await autoTopUp('bad-settings')).toBeNull();
    expect(await t.app.rows('SELECT 1 FROM auto_top_ups WHERE account_id = $1', ['bad-settings'])).toEqual([]);
  });

  it('the timed work buys a fall that no instance claimed (its instance died between the commits)', async () => {
    await openAccount(t.app, 'unclaimed', { balance: 30 });
    await setAutoTopUp('unclaimed', { packCode: 'STARTER', belowCredits: 40, maxPerMonth: 2 });
    // As a debit's commit leaves it when the instance that would claim it is gone (and the notification with it).
    await t.app.audit.query(`UPDATE auto_top_ups SET requested_at = '2025-01-31T18:00:00Z' WHERE account_id = 'unclaimed'`);
    expect(await automatic('unclaimed')).toEqual([]);
    expect((await t.app.gql(AdvanceTestClockDocument, { hours: 0.1 }, ADMIN)).errors).toBeUndefined();
    await settled('unclaimed');
    expect(await automatic('unclaimed')).toEqual([{ status: 'COMPLETED', pack_code: 'STARTER', credits: 50, failure_reason: null }]);
    expect(await balanceOf(t.app, 'unclaimed')).toBe(80);
  });

  it('a claimed request that is no longer due (the balance rose meanwhile) buys nothing', async () => {
    await openAccount(t.app, 'risen', { balance: 100 });
    await setAutoTopUp('risen', { packCode: 'STARTER', belowCredits: 40, maxPerMonth: 2 });
    await t.app.audit.query(`UPDATE auto_top_ups SET requested_at = '2025-01-31T18:00:00Z' WHERE account_id = 'risen'`);
    await t.app.server.services.autoTopUps.drive('risen');
    expect(await automatic('risen')).toEqual([]);
    expect(await t.app.one('SELECT requested_at, purchase_id FROM auto_top_ups WHERE account_id = $1', ['risen'])).toEqual({ requested_at: null, purchase_id: null });
  });

  it('the auditor reports an automatic purchase in flight that auto top-up is not waiting for, and a month over its cap', async () => {
    await openAccount(t.app, 'orphan', { balance: 30 });
    await setAutoTopUp('orphan', { packCode: 'STARTER', belowCredits: 20, maxPerMonth: 1 });
    await t.app.audit.query(`UPDATE auto_top_ups SET updated_at = '2024-12-01T00:00:00Z' WHERE account_id = 'orphan'`);
    const insert = (id: string, status: string) => t.app.audit.query(
      `INSERT INTO purchases (id, account_id, kind, status, pack_code, credits, amount_cents, currency, provider, automatic, created_at, completed_at)
       VALUES ($1, 'orphan', 'CREDIT_PACK', $2, 'STARTER', 50, 500, 'USD', 'sandbox', true, '2025-01-31T18:00:00Z', NULL)`, [id, status]);
    await insert('00000000-0000-4000-8000-00000000a001', 'PENDING');
    await insert('00000000-0000-4000-8000-00000000a002', 'PENDING');
    const found = (await ledgerViolations(t.app.audit)).filter((v) => v.includes('orphan')).sort();
    expect(found).toEqual([
      'auto top-up in flight: account orphan: automatic purchase 00000000-0000-4000-8000-00000000a001 pending (2 in all), auto top-up waits for (none)',
      'auto top-up in flight: account orphan: automatic purchase 00000000-0000-4000-8000-00000000a002 pending (2 in all), auto top-up waits for (none)',
      'auto top-up monthly cap: account orphan, 2025-01: 2 automatic purchases, cap 1',
    ]);
    await t.app.audit.query(`UPDATE purchases SET status = 'FAILED', failure_reason = 'test fixture' WHERE account_id = 'orphan'`);
    expect((await ledgerViolations(t.app.audit)).filter((v) => v.includes('orphan'))).toEqual([]);
  });
});
