/**
 * Lock order of starts (found by the soak, twice: "deadlock detected" answered to a member's start).
 * A member's start on a workspace inserts a job started by the member, and that job's foreign
 * key takes a KEY SHARE lock on the member's own account row. A batch of starts that holds the
 * member's own account row (their own start) and then reaches the workspace row must not close
 * a cycle with it: start_generation locks the account row FOR NO KEY UPDATE, which a KEY SHARE
 * does not wait for, and still one start at a time per account.
 * And a membership change locks the workspaces row FOR NO KEY UPDATE: a FOR UPDATE there queued
 * ahead of the KEY SHARE that a member's first start of the month (its spending row) or a
 * notification naming the workspace takes, closing a cycle with a refund that held such a KEY
 * SHARE and waited for the workspace's account row.
 */
import { randomUUID } from 'node:crypto';
import type { PoolClient } from 'pg';
import { ADMIN, openAccount } from './helpers/accounts';
import { startTestApp, type TestApp } from './helpers/test-app';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app.stop();
});

async function must<T>(p: Promise<{ data?: T | null; errors?: unknown }>): Promise<T> {
  const r = await p;
  expect(r.errors).toBeUndefined();
  return r.data!;
}

/** A start as the service hands it to start_generation: the fields of `job` (a start made through the API), for `account` and `member`. */
async function startCommand(job: Record<string, unknown>, account: string, member: string | null): Promise<string> {
  const s = await app.one<{ tier: string; plan_status: string }>('SELECT tier, plan_status FROM accounts WHERE id = $1', [account]);
  return JSON.stringify({
    account, credits: job.credits, description: 'lock order', job: randomUUID(), type: job.type, settings: job.settings, prompt: 'p', cost_class: job.cost_class,
    price_book_version: job.price_book_version, quote: null, tier: s.tier, plan_status: s.plan_status, queue_class: job.queue_class, queue_rank: job.queue_rank,
    key: null, request_hash: null, response: null, now: job.created_at, member,
  });
}
/** One start, waiting for its account row (as a start that found it busy runs again). */
const START = `SELECT r.outcome FROM start_generation(json_populate_record(NULL::start_command, $1::json), true) r`;

describe('starts on a workspace and on its member’s own account', () => {
  it('never deadlock: a start holding the member’s own row and a member start holding the workspace’s both commit', async () => {
    await openAccount(app, 'lock-owner');
    const member0 = await openAccount(app, 'lock-member');
    const ws = await must(app.raw<{ createWorkspace: { workspace: { id: string } } }>('mutation { createWorkspace(input: { name: "Locks" }) { workspace { id } userErrors { code } } }', undefined, { sub: 'lock-owner' }));
    const w = ws.createWorkspace.workspace.id;
    await must(app.raw(`mutation { setWorkspaceMember(input: { workspaceId: "${w}", accountId: "lock-member", role: MEMBER }) { member { role } userErrors { code } } }`, undefined, { sub: 'lock-owner' }));
    for (const a of [w, 'lock-member']) await must(app.raw(`mutation { adjustCredits(input: { accountId: "${a}", amount: 50, reason: "float" }) { entry { id } userErrors { code } } }`, undefined, ADMIN));
    // One start through the API gives the command's fields (price book, cost and queue class, settings).
    const first = await must(
      app.raw<{ startGeneration: { job: { id: string } } }>('mutation { startGeneration(input: { settings: { type: IMAGE, imageQuality: STANDARD }, prompt: "p" }) { job { id } userErrors { code } } }', undefined, { sub: 'lock-member' }),
    );
    const job = await app.one<Record<string, unknown>>('SELECT * FROM generation_jobs WHERE id = $1', [first.startGeneration.job.id]);
    const command = (account: string, member: string | null) => startCommand(job, account, member);
    const own = await command('lock-member', null);
    const memberStart = await command(w, 'lock-member');
    const ownerStart = await command(w, 'lock-owner');

    const c1: PoolClient = await app.audit.connect();
    const c2: PoolClient = await app.audit.connect();
    try {
      await c1.query('BEGIN');
      await c2.query('BEGIN');
      // A batch starts the member's own generation: it holds the member's account row.
      expect((await c1.query(START, [own])).rows).toEqual([{ outcome: 'debited' }]);
      // The member starts one from the workspace: it holds the workspace's row, and its job names the member.
      const second = c2.query(START, [memberStart]);
      const secondDone = await Promise.race([second.then(() => true), new Promise((r) => setTimeout(() => r(false), 1500))]);
      // The batch goes on to the owner's start from the workspace: it waits for the member's start, which does not wait for it.
      const third = c1.query(START, [ownerStart]);
      const outcomes = await Promise.allSettled([second.then((r) => c2.query('COMMIT').then(() => r.rows)), third.then((r) => c1.query('COMMIT').then(() => r.rows))]);
      expect([secondDone, ...outcomes.map((o) => (o.status === 'fulfilled' ? o.value : String((o.reason as Error).message)))]).toEqual([true, [{ outcome: 'debited' }], [{ outcome: 'debited' }]]);
    } finally {
      await c1.query('ROLLBACK').catch(() => undefined);
      await c2.query('ROLLBACK').catch(() => undefined);
      c1.release();
      c2.release();
    }
    const balances = await app.rows<{ id: string; available: number }>('SELECT id, available FROM accounts WHERE id = ANY($1) ORDER BY id', [[w, 'lock-member']]);
    const price = Number(job.credits);
    // The workspace paid the member's start and the owner's; the member their first start and the batch's.
    expect(balances.map((b) => [b.id, b.available]).sort()).toEqual([[w, 50 - 2 * price], ['lock-member', member0 + 50 - 2 * price]].sort());
    await app.checkInvariants();
  });

  it('never deadlock with a membership change queued between a refund and a batch on the workspace', async () => {
    await openAccount(app, 'lock2-owner');
    await openAccount(app, 'lock2-member');
    const ws = await must(app.raw<{ createWorkspace: { workspace: { id: string } } }>('mutation { createWorkspace(input: { name: "Locks 2" }) { workspace { id } userErrors { code } } }', undefined, { sub: 'lock2-owner' }));
    const w = ws.createWorkspace.workspace.id;
    const setMember = (limit: number) =>
      app.raw<{ setWorkspaceMember: { member: { role: string } | null; userErrors: { code: string }[] } }>(
        `mutation { setWorkspaceMember(input: { workspaceId: "${w}", accountId: "lock2-member", role: MEMBER, monthlyLimit: ${limit} }) { member { role } userErrors { code } } }`, undefined, { sub: 'lock2-owner' });
    await must(setMember(500));
    await must(app.raw(`mutation { adjustCredits(input: { accountId: "${w}", amount: 50, reason: "float" }) { entry { id } userErrors { code } } }`, undefined, ADMIN));
    // The owner spent from the workspace this month already (their spending row exists); the member not yet.
    const first = await must(
      app.raw<{ startGeneration: { job: { id: string } } }>(`mutation { startGeneration(input: { settings: { type: IMAGE, imageQuality: STANDARD }, prompt: "p", workspaceId: "${w}" }) { job { id } userErrors { code } } }`, undefined, { sub: 'lock2-owner' }),
    );
    const job = await app.one<Record<string, unknown>>('SELECT * FROM generation_jobs WHERE id = $1', [first.startGeneration.job.id]);
    const command = (account: string, member: string) => startCommand(job, account, member);
    const ownerStart = await command(w, 'lock2-owner');
    const memberStart = await command(w, 'lock2-member');

    const refund: PoolClient = await app.audit.connect();
    const batch: PoolClient = await app.audit.connect();
    try {
      await refund.query('BEGIN');
      await batch.query('BEGIN');
      // A refund of a member's job names the workspace first (its notification's foreign key: KEY SHARE on the workspaces row).
      await refund.query('SELECT 1 FROM workspaces WHERE id = $1 FOR KEY SHARE', [w]);
      // A batch holds the workspace's account row (the owner's start: no new row naming the workspace).
      expect((await batch.query(START, [ownerStart])).rows).toEqual([{ outcome: 'debited' }]);
      // A membership change through the API, meanwhile: it locks the workspaces row against other
      // membership changes only, so it neither waits for the refund's KEY SHARE nor, queued, makes
      // the next KEY SHARE wait behind it (the soak's cycle: batch → membership change → refund → batch).
      const change = setMember(800).then((r) => r.errors ?? r.data?.setWorkspaceMember.userErrors);
      const changedWhileOpen = await Promise.race([change.then(() => true), new Promise((r) => setTimeout(() => r(false), 3000))]);
      // The batch reaches the member's first start of the month (their spending row names the workspace: KEY SHARE)...
      const memberDone = batch.query(START, [memberStart]).then((r) => batch.query('COMMIT').then(() => r.rows));
      // ...and the refund reaches the workspace's account row, which the batch holds until it commits.
      const refundDone = refund.query('SELECT 1 FROM accounts WHERE id = $1 FOR NO KEY UPDATE', [w]).then(() => refund.query('COMMIT')).then(() => 'committed');
      const outcomes = await Promise.allSettled([memberDone, refundDone, change]);
      expect([changedWhileOpen, ...outcomes.map((o) => (o.status === 'fulfilled' ? o.value : String((o.reason as Error).message)))]).toEqual([true, [{ outcome: 'debited' }], 'committed', []]);
    } finally {
      await refund.query('ROLLBACK').catch(() => undefined);
      await batch.query('ROLLBACK').catch(() => undefined);
      refund.release();
      batch.release();
    }
    const price = Number(job.credits);
    expect(await app.one('SELECT available FROM accounts WHERE id = $1', [w])).toEqual({ available: 50 - 3 * price });
    expect(await app.one(`SELECT monthly_limit FROM workspace_members WHERE workspace_id = $1 AND account_id = 'lock2-member'`, [w])).toEqual({ monthly_limit: 800 });
    await app.checkInvariants();
  });
});
