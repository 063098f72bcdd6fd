/**
 * Lock order of starts (found by the soak: "deadlock detected" answered to a member's start).
 * A member's start on a workspace inserts a job started by the member, and that job's foreign
 * key takes a KEY SHARE lock on the member's own account row. A batch of starts that holds the
 * member's own account row (their own start) and then reaches the workspace row must not close
 * a cycle with it: start_generation locks the account row FOR NO KEY UPDATE, which a KEY SHARE
 * does not wait for, and still one start at a time per account.
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
    const standing = async (id: string) => app.one<{ tier: string; plan_status: string }>('SELECT tier, plan_status FROM accounts WHERE id = $1', [id]);
    const command = async (account: string, member: string | null) => {
      const s = await standing(account);
      return JSON.stringify({
        account, credits: job.credits, description: 'lock order', job: randomUUID(), type: job.type, settings: job.settings, prompt: 'p', cost_class: job.cost_class,
        price_book_version: job.price_book_version, quote: null, tier: s.tier, plan_status: s.plan_status, queue_class: job.queue_class, queue_rank: job.queue_rank,
        key: null, request_hash: null, response: null, now: job.created_at, member,
      });
    };
    const START = `SELECT r.outcome FROM start_generation(json_populate_record(NULL::start_command, $1::json), true) r`;
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
});
