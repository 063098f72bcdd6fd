/**
 * Workspaces through the real stack: a shared pool that is an account of its own, its members
 * and roles (always one OWNER), what a MEMBER may not do (FORBIDDEN) and what a non-member sees
 * (exactly an unknown id), the member's monthly limit enforced in the debit's transaction (also
 * under racing starts), the 80 % notice, jobs that keep who started them, notifications to the
 * OWNER and ADMINs, and a removed member losing access at once, open subscriptions included.
 */
import {
  AdvanceTestClockDocument,
  CancelGenerationDocument,
  ChangePlanDocument,
  CreateWorkspaceDocument,
  MyWorkspacesDocument,
  PurchaseCreditPackDocument,
  RemoveWorkspaceMemberDocument,
  RequestRefundDocument,
  SetAutoTopUpDocument,
  SetWorkspaceMemberDocument,
  StartGenerationDocument,
  WorkspaceBalanceDocument,
  WorkspaceCancelPlanDocument,
  WorkspaceQuoteDocument,
  WorkspaceViewDocument,
  WorkspaceWarningsDocument,
  type GenerationSettingsInput,
  type WorkspaceRole,
} from './graphql/generated';
import { ADMIN, adjustCredits, balanceOf, openAccount, signupCredits } from './helpers/accounts';
import { notesOf } from './helpers/notices';
import { subscribe, untilLive } from './helpers/subscriptions';
import { ledgerViolations } from './helpers/invariants';
import { eventually, useTestApp } from './helpers/test-app';

const t = useTestApp({ TEST_CLOCK: '1', SIMULATED_WORKER: '0' });
const IMAGES = (count: number): GenerationSettingsInput => ({ type: 'IMAGE', imageQuality: 'STANDARD', count }); // 1 credit each
const UNKNOWN = 'workspace:00000000-0000-4000-8000-000000000000';

async function createWorkspace(owner: string, name = 'Studio') {
  const out = (await t.app.gql(CreateWorkspaceDocument, { input: { name } }, { sub: owner })).data!.createWorkspace;
  expect(out.userErrors).toEqual([]);
  return out.workspace!.id;
}

function setMember(caller: string, workspaceId: string, accountId: string, role: WorkspaceRole, monthlyLimit?: number | null) {
  return t.app.gql(SetWorkspaceMemberDocument, { input: { workspaceId, accountId, role, monthlyLimit } }, { sub: caller });
}

function removeMember(caller: string, workspaceId: string, accountId: string) {
  return t.app.gql(RemoveWorkspaceMemberDocument, { input: { workspaceId, accountId } }, { sub: caller });
}

function start(sub: string, workspaceId: string | null, settings = IMAGES(1), idempotencyKey?: string) {
  return t.app.gql(StartGenerationDocument, { input: { settings, prompt: 'team work', workspaceId, idempotencyKey } }, { sub });
}

/** A new workspace of `owner` with `credits` in its pool (an operator's adjustment: an exact amount). */
async function funded(owner: string, credits: number): Promise<string> {
  const ws = await createWorkspace(owner);
  if (credits > 0) await adjustCredits(t.app, ws, credits, { reason: 'test pool' });
  return ws;
}

const codes = (r: { errors?: readonly { extensions?: Record<string, unknown> }[] | null }) => (r.errors ?? []).map((e) => e.extensions?.code);

describe('workspaces', () => {
  it('opens a workspace on FREE with no credits and its creator as OWNER; idempotent with a key', async () => {
    const signup = await signupCredits(t.app);
    await openAccount(t.app, 'ws-founder');
    const first = (await t.app.gql(CreateWorkspaceDocument, { input: { name: '  Studio North ', idempotencyKey: 'ws-1' } }, { sub: 'ws-founder' })).data!.createWorkspace;
    const again = (await t.app.gql(CreateWorkspaceDocument, { input: { name: '  Studio North ', idempotencyKey: 'ws-1' } }, { sub: 'ws-founder' })).data!.createWorkspace;
    expect(first.userErrors).toEqual([]);
    expect(first.workspace).toEqual({ id: expect.stringMatching(/^workspace:[0-9a-f-]{36}$/), name: 'Studio North', myRole: 'OWNER', plan: { tier: { code: 'FREE' }, status: 'ACTIVE' }, balance: { id: first.workspace!.id, available: 0 } });
    expect(again.workspace!.id).toBe(first.workspace!.id);
    const me = (await t.app.gql(MyWorkspacesDocument, {}, { sub: 'ws-founder' })).data!.me;
    expect(me.workspaces).toEqual([{ id: first.workspace!.id, name: 'Studio North', myRole: 'OWNER' }]);
    expect(me.balance.available).toBe(signup); // the founder's own credits are untouched
    const view = (await t.app.gql(WorkspaceViewDocument, { id: first.workspace!.id }, { sub: 'ws-founder' })).data!.workspace!;
    expect(view.members.edges.map((e) => [e.node.accountId, e.node.role, e.node.monthlyLimit, e.node.spentThisMonth])).toEqual([['ws-founder', 'OWNER', null, 0]]);
    expect(view.ledger.edges).toEqual([]);
    const blank = await t.app.gql(CreateWorkspaceDocument, { input: { name: '   ' } }, { sub: 'ws-founder' });
    expect(blank.errors!.map((e) => [e.extensions!.code, e.message])).toEqual([['BAD_USER_INPUT', 'input.name must not be blank']]);
  });

  it('lets any member generate from the pool: the job keeps who started it and shows in both lists; the members keep their own credits', async () => {
    const ws = await funded('pool-owner', 20);
    await openAccount(t.app, 'pool-member');
    const personal = await balanceOf(t.app, 'pool-member');
    expect((await setMember('pool-owner', ws, 'pool-member', 'MEMBER')).data!.setWorkspaceMember.userErrors).toEqual([]);
    const quote = (await t.app.gql(WorkspaceQuoteDocument, { settings: IMAGES(3), workspaceId: ws }, { sub: 'pool-member' })).data!.quote;
    expect(quote).toEqual({ credits: 3, affordable: true, balanceAfter: 17 });
    const out = (await start('pool-member', ws, IMAGES(3))).data!.startGeneration;
    expect(out.userErrors).toEqual([]);
    expect(out.balance).toEqual({ available: 17 });
    expect(await balanceOf(t.app, 'pool-member')).toBe(personal);
    const view = (await t.app.gql(WorkspaceViewDocument, { id: ws }, { sub: 'pool-member' })).data!.workspace!;
    expect(view.myRole).toBe('MEMBER');
    expect(view.jobs.edges.map((e) => [e.node.id, e.node.startedBy, e.node.credits])).toEqual([[out.job!.id, 'pool-member', 3]]);
    expect(view.ledger.edges[0].node).toEqual({ kind: 'DEBIT', amount: -3 });
    const mine = (await t.app.gql(MyWorkspacesDocument, {}, { sub: 'pool-member' })).data!.me;
    expect(mine.jobs.edges.map((e) => [e.node.id, e.node.startedBy])).toEqual([[out.job!.id, 'pool-member']]);
    // The entry's actor is the member, and so is the scope of their key: two members' keys never meet.
    const entry = await t.app.one('SELECT actor FROM ledger_entries WHERE job_id = $1', [out.job!.id]);
    expect(entry).toEqual({ actor: 'pool-member' });
    // Canceled by whoever started it: the pool gets the credits back.
    const canceled = (await t.app.gql(CancelGenerationDocument, { jobId: out.job!.id }, { sub: 'pool-member' })).data!.cancelGeneration;
    expect(canceled.userErrors).toEqual([]);
    expect(canceled.balance).toEqual({ available: 20 });
  });

  it('keeps buying, plans, refunds, auto top-up and members to the OWNER and ADMINs: a MEMBER is FORBIDDEN and nothing changes', async () => {
    const ws = await funded('boss', 0);
    await setMember('boss', ws, 'helper', 'ADMIN');
    await setMember('boss', ws, 'crew', 'MEMBER');
    const bought = (await t.app.gql(PurchaseCreditPackDocument, { input: { packCode: 'STARTER', workspaceId: ws } }, { sub: 'helper' })).data!.purchaseCreditPack;
    expect(bought.userErrors).toEqual([]);
    expect(bought.balance).toEqual({ available: 50 });
    for (const r of [
      await t.app.gql(PurchaseCreditPackDocument, { input: { packCode: 'STARTER', workspaceId: ws } }, { sub: 'crew' }),
      await t.app.gql(ChangePlanDocument, { input: { tier: 'CREATOR', interval: 'MONTHLY', workspaceId: ws } }, { sub: 'crew' }),
      await t.app.gql(WorkspaceCancelPlanDocument, { workspaceId: ws }, { sub: 'crew' }),
      await t.app.gql(RequestRefundDocument, { input: { purchaseId: bought.purchase!.id, workspaceId: ws } }, { sub: 'crew' }),
      await t.app.gql(SetAutoTopUpDocument, { input: { packCode: 'STARTER', belowCredits: 5, maxPerMonth: 1, workspaceId: ws } }, { sub: 'crew' }),
      await setMember('crew', ws, 'crew-friend', 'MEMBER'),
      await removeMember('crew', ws, 'helper'),
    ]) {
      expect(codes(r)).toEqual(['FORBIDDEN']);
    }
    const view = (await t.app.gql(WorkspaceViewDocument, { id: ws }, { sub: 'boss' })).data!.workspace!;
    expect(view.balance.available).toBe(50);
    expect(view.purchases.edges.map((e) => e.node.status)).toEqual(['COMPLETED']);
    expect(view.members.totalCount).toBe(3);
    expect(view.autoTopUp).toBeNull();
    // Its notifications reach the OWNER and the ADMIN, not the MEMBER.
    for (const sub of ['boss', 'helper']) {
      expect(await notesOf(t.app, sub, ['PURCHASE_COMPLETED'])).toEqual([{ kind: 'PURCHASE_COMPLETED', message: 'Thank you: 50 credits from the STARTER pack are yours, and they never expire.' }]);
    }
    expect(await notesOf(t.app, 'crew', ['PURCHASE_COMPLETED'])).toEqual([]);
    // The ADMIN asks for its refund (unused, within the window): approved, the pool's credits withdrawn.
    const refund = (await t.app.gql(RequestRefundDocument, { input: { purchaseId: bought.purchase!.id, workspaceId: ws } }, { sub: 'helper' })).data!.requestRefund;
    expect(refund.refundRequest).toMatchObject({ status: 'APPROVED', creditsRevoked: 50 });
    // The OWNER moves the workspace to CREATOR: its own allowance and queue.
    const plan = (await t.app.gql(ChangePlanDocument, { input: { tier: 'CREATOR', interval: 'MONTHLY', workspaceId: ws } }, { sub: 'boss' })).data!.changePlan;
    expect(plan.userErrors).toEqual([]);
    expect(plan.balance).toEqual({ available: 300 });
    const job = (await start('crew', ws)).data!.startGeneration.job!;
    expect(job.queueClass).toBe('PRIORITY');
  });

  it('lets whoever started a pool job, and the OWNER and ADMINs, stop it; another MEMBER is FORBIDDEN', async () => {
    const ws = await funded('stop-owner', 20);
    await setMember('stop-owner', ws, 'stop-admin', 'ADMIN');
    await setMember('stop-owner', ws, 'stop-a', 'MEMBER');
    await setMember('stop-owner', ws, 'stop-b', 'MEMBER');
    const jobs = await Promise.all([0, 1].map(async () => (await start('stop-a', ws, IMAGES(2))).data!.startGeneration.job!.id));
    const byOther = await t.app.gql(CancelGenerationDocument, { jobId: jobs[0] }, { sub: 'stop-b' });
    expect(codes(byOther)).toEqual(['FORBIDDEN']);
    expect(await balanceOf(t.app, ws)).toBe(16);
    const byAdmin = (await t.app.gql(CancelGenerationDocument, { jobId: jobs[0] }, { sub: 'stop-admin' })).data!.cancelGeneration;
    expect([byAdmin.userErrors, byAdmin.job!.status, byAdmin.balance]).toEqual([[], 'CANCELED', { available: 18 }]);
    const byStarter = (await t.app.gql(CancelGenerationDocument, { jobId: jobs[1] }, { sub: 'stop-a' })).data!.cancelGeneration;
    expect([byStarter.job!.status, byStarter.balance]).toEqual(['CANCELED', { available: 20 }]);
    const member = (await t.app.gql(WorkspaceViewDocument, { id: ws }, { sub: 'stop-a' })).data!.workspace!.members.edges.find((e) => e.node.accountId === 'stop-a')!.node;
    expect(member.spentThisMonth).toBe(0); // both refunds counted back
  });

  it('answers a non-member exactly as an unknown id, in every position', async () => {
    const ws = await funded('private-owner', 10);
    const job = (await start('private-owner', ws)).data!.startGeneration.job!;
    await openAccount(t.app, 'outsider');
    for (const id of [ws, UNKNOWN, 'not-a-workspace']) {
      expect((await t.app.gql(WorkspaceViewDocument, { id }, { sub: 'outsider' })).data!.workspace).toBeNull();
      expect((await start('outsider', id)).data!.startGeneration.userErrors).toEqual([{ code: 'NOT_FOUND', message: 'No workspace of yours has this id', field: ['input', 'workspaceId'] }]);
      expect((await t.app.gql(PurchaseCreditPackDocument, { input: { packCode: 'STARTER', workspaceId: id } }, { sub: 'outsider' })).data!.purchaseCreditPack.userErrors.map((e) => e.code)).toEqual(['NOT_FOUND']);
      expect((await setMember('outsider', id, 'outsider', 'OWNER')).data!.setWorkspaceMember.userErrors.map((e) => e.code)).toEqual(['NOT_FOUND']);
      const q = await t.app.gql(WorkspaceQuoteDocument, { settings: IMAGES(1), workspaceId: id }, { sub: 'outsider' });
      expect(q.errors!.map((e) => [e.extensions!.code, e.message])).toEqual([['NOT_FOUND', 'No workspace of yours has this id']]);
    }
    // A refused invitation changes nothing, not even the invitee's account.
    expect((await setMember('outsider', ws, 'never-seen-invitee', 'MEMBER')).data!.setWorkspaceMember.userErrors.map((e) => e.code)).toEqual(['NOT_FOUND']);
    expect(await t.app.rows('SELECT id FROM accounts WHERE id = $1', ['never-seen-invitee'])).toEqual([]);
    const cancel = (await t.app.gql(CancelGenerationDocument, { jobId: job.id }, { sub: 'outsider' })).data!.cancelGeneration;
    expect(cancel.userErrors.map((e) => e.code)).toEqual(['NOT_FOUND']);
    expect(await balanceOf(t.app, ws)).toBe(9);
    // A token may not name a workspace as its subject.
    const asWorkspace = await t.app.raw('{ me { id } }', undefined, { sub: ws });
    expect(asWorkspace.status).toBe(401);
  });

  it('always has exactly one OWNER: ownership moves by making another member OWNER, and the OWNER cannot leave', async () => {
    const ws = await funded('first-owner', 0);
    await setMember('first-owner', ws, 'deputy', 'ADMIN');
    await setMember('first-owner', ws, 'worker-bee', 'MEMBER');
    expect(codes(await setMember('deputy', ws, 'deputy', 'OWNER'))).toEqual(['FORBIDDEN']); // an ADMIN cannot take it
    expect(codes(await removeMember('deputy', ws, 'first-owner'))).toEqual(['FORBIDDEN']);
    expect((await removeMember('first-owner', ws, 'first-owner')).data!.removeWorkspaceMember.userErrors).toEqual([
      { code: 'INVALID_STATE', message: 'The OWNER cannot leave: make another member OWNER first', field: ['input', 'accountId'] },
    ]);
    expect((await setMember('first-owner', ws, 'first-owner', 'ADMIN')).data!.setWorkspaceMember.userErrors).toEqual([
      { code: 'INVALID_STATE', message: 'A workspace always has one OWNER: make another member OWNER to step down', field: ['input', 'role'] },
    ]);
    const moved = (await setMember('first-owner', ws, 'deputy', 'OWNER')).data!.setWorkspaceMember;
    expect(moved.member).toMatchObject({ accountId: 'deputy', role: 'OWNER' });
    expect(moved.workspace).toEqual({ id: ws, myRole: 'ADMIN' });
    const roles = await t.app.rows('SELECT account_id, role FROM workspace_members WHERE workspace_id = $1 ORDER BY account_id', [ws]);
    expect(roles).toEqual([{ account_id: 'deputy', role: 'OWNER' }, { account_id: 'first-owner', role: 'ADMIN' }, { account_id: 'worker-bee', role: 'MEMBER' }]);
    // A member may leave; the database refuses a second OWNER, and no OWNER, whatever the code does.
    expect((await removeMember('worker-bee', ws, 'worker-bee')).data!.removeWorkspaceMember.workspace).toBeNull();
    await expect(t.app.audit.query(`UPDATE workspace_members SET role = 'OWNER' WHERE workspace_id = $1 AND account_id = 'first-owner'`, [ws])).rejects.toThrow(/workspace_members_one_owner/);
    await expect(t.app.audit.query(`UPDATE workspace_members SET role = 'ADMIN' WHERE workspace_id = $1 AND account_id = 'deputy'`, [ws])).rejects.toThrow(/would have 0 owners/);
  });

  it('refuses a start that would take a member past their monthly limit, counts refunds back, notifies at 80 % once, and starts over next month', async () => {
    const ws = await funded('limit-owner', 100);
    await setMember('limit-owner', ws, 'limited', 'MEMBER', 10);
    expect((await start('limited', ws, IMAGES(4))).data!.startGeneration.userErrors).toEqual([]);
    const second = (await start('limited', ws, IMAGES(4))).data!.startGeneration;
    expect(second.userErrors).toEqual([]);
    const over = (await start('limited', ws, IMAGES(3))).data!.startGeneration;
    expect(over.userErrors).toEqual([
      { code: 'MEMBER_LIMIT_REACHED', message: 'This generation costs 3 credits: with the 8 you spent this month it would pass your monthly limit of 10 in this workspace', field: null },
    ]);
    expect(over.job).toBeNull();
    expect(await balanceOf(t.app, ws)).toBe(92);
    expect(await notesOf(t.app, 'limited', ['WORKSPACE_MEMBER_LIMIT'])).toEqual([
      { kind: 'WORKSPACE_MEMBER_LIMIT', message: 'You have spent 8 credits of your 10-credit monthly limit in the workspace "Studio" (80 %); generations past the limit are refused until next month.' },
    ]);
    // The second job canceled: its 4 count back (4 of 10: below 80 %, so the notice re-arms), and 3 fit again (7 of 10).
    await t.app.gql(CancelGenerationDocument, { jobId: second.job!.id }, { sub: 'limited' });
    expect((await start('limited', ws, IMAGES(3))).data!.startGeneration.userErrors).toEqual([]);
    const member = (await t.app.gql(WorkspaceViewDocument, { id: ws }, { sub: 'limited' })).data!.workspace!.members.edges.find((e) => e.node.accountId === 'limited')!.node;
    expect([member.monthlyLimit, member.spentThisMonth]).toEqual([10, 7]);
    expect((await notesOf(t.app, 'limited', ['WORKSPACE_MEMBER_LIMIT'])).length).toBe(1); // 7 is below 80 %
    // A new UTC month (the clock starts 2025-01-31T18:00Z): the limit starts over.
    expect((await t.app.gql(AdvanceTestClockDocument, { hours: 7 }, ADMIN)).errors).toBeUndefined();
    expect((await start('limited', ws, IMAGES(4))).data!.startGeneration.userErrors).toEqual([]);
    expect((await start('limited', ws, IMAGES(4))).data!.startGeneration.userErrors).toEqual([]);
    const spend = await t.app.rows('SELECT month::text, spent, refunded FROM workspace_member_spend WHERE workspace_id = $1 AND account_id = $2 ORDER BY month', [ws, 'limited']);
    expect(spend).toEqual([{ month: '2025-01-01', spent: 11, refunded: 4 }, { month: '2025-02-01', spent: 8, refunded: 0 }]);
  });

  it('accepts starts of a member with the largest limit (80 % of it is no integer overflow)', async () => {
    const ws = await funded('big-owner', 10);
    await setMember('big-owner', ws, 'big-spender', 'MEMBER', 1_000_000_000);
    expect((await start('big-spender', ws, IMAGES(2))).data!.startGeneration.userErrors).toEqual([]);
    const member = (await t.app.gql(WorkspaceViewDocument, { id: ws }, { sub: 'big-spender' })).data!.workspace!.members.edges.find((e) => e.node.accountId === 'big-spender')!.node;
    expect([member.monthlyLimit, member.spentThisMonth]).toEqual([1_000_000_000, 2]);
  });

  it('racing starts of one member never pass the limit, nor the pool', async () => {
    const ws = await funded('race-owner', 100);
    await setMember('race-owner', ws, 'racer-a', 'MEMBER', 20);
    const results = await Promise.all(Array.from({ length: 30 }, () => start('racer-a', ws)));
    const out = results.map((r): string => r.data!.startGeneration.userErrors.map((e) => e.code)[0] ?? 'ok');
    expect(out.filter((c) => c === 'ok').length).toBe(20);
    expect(out.filter((c) => c === 'MEMBER_LIMIT_REACHED').length).toBe(10);
    expect(await balanceOf(t.app, ws)).toBe(80);

    // Two members with limits of 10 each race 12 starts each against a pool of 15: 15 accepted in all, none past a limit.
    const pool = await funded('race-owner', 15);
    await setMember('race-owner', pool, 'racer-b', 'MEMBER', 10);
    await setMember('race-owner', pool, 'racer-c', 'MEMBER', 10);
    const mixed = await Promise.all(Array.from({ length: 24 }, (_, i) => start(i % 2 ? 'racer-b' : 'racer-c', pool)));
    const accepted = mixed.filter((r) => r.data!.startGeneration.job);
    expect(accepted.length).toBe(15);
    const refusals = mixed.flatMap((r) => r.data!.startGeneration.userErrors.map((e) => e.code));
    expect(refusals.length).toBe(9);
    expect(refusals.every((c) => c === 'INSUFFICIENT_CREDITS' || c === 'MEMBER_LIMIT_REACHED')).toBe(true);
    expect(await balanceOf(t.app, pool)).toBe(0);
    const spent = await t.app.rows<{ account_id: string; spent: number }>('SELECT account_id, spent FROM workspace_member_spend WHERE workspace_id = $1 ORDER BY account_id', [pool]);
    expect(spent.reduce((s, r) => s + r.spent, 0)).toBe(15);
    expect(spent.every((r) => r.spent <= 10)).toBe(true);
  });

  it('a removed member loses access at once: their open subscription ends, their starts are refused', async () => {
    const ws = await funded('remover', 30);
    await setMember('remover', ws, 'leaver', 'MEMBER');
    const client = t.app.ws({ sub: 'leaver' });
    const sub = subscribe(client, WorkspaceBalanceDocument, { workspaceId: ws });
    await sub.waitFor(1); // the pool's balance as it is now
    expect(sub.events[0]).toEqual({ balanceChanged: { id: ws, available: 30 } });
    await untilLive(sub, () => adjustCredits(t.app, ws, 1));
    expect((await removeMember('remover', ws, 'leaver')).data!.removeWorkspaceMember.member).toMatchObject({ accountId: 'leaver', role: 'MEMBER' });
    await eventually(() => sub.completed);
    await adjustCredits(t.app, ws, 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(sub.events).toEqual([]);
    expect((await start('leaver', ws)).data!.startGeneration.userErrors.map((e) => e.code)).toEqual(['NOT_FOUND']);
    expect((await t.app.gql(WorkspaceViewDocument, { id: ws }, { sub: 'leaver' })).data!.workspace).toBeNull();
    // Subscribing again: what an unknown id gets.
    const again = subscribe(client, WorkspaceBalanceDocument, { workspaceId: ws });
    const unknown = subscribe(client, WorkspaceBalanceDocument, { workspaceId: UNKNOWN });
    await eventually(() => again.errors.length > 0 && unknown.errors.length > 0);
    expect(JSON.stringify(again.errors)).toBe(JSON.stringify(unknown.errors));
    await sub.dispose();
  });

  it('sends the pool\'s live balance to its members only', async () => {
    const ws = await funded('live-owner', 10);
    await setMember('live-owner', ws, 'live-member', 'MEMBER');
    const member = subscribe(t.app.ws({ sub: 'live-member' }), WorkspaceBalanceDocument, { workspaceId: ws });
    const owner = subscribe(t.app.ws({ sub: 'live-owner' }), WorkspaceBalanceDocument, { workspaceId: ws });
    const personal = subscribe(t.app.ws({ sub: 'live-member' }), WorkspaceBalanceDocument, {});
    await member.waitFor(1);
    await owner.waitFor(1);
    await personal.waitFor(1);
    await untilLive(member, () => adjustCredits(t.app, ws, 1));
    await untilLive(owner, () => adjustCredits(t.app, ws, 1));
    personal.events.length = 0;
    await start('live-member', ws, IMAGES(2));
    await member.waitFor(1);
    await owner.waitFor(1);
    expect(member.events.at(-1)!.balanceChanged.available).toBe(await balanceOf(t.app, ws));
    expect(owner.events.at(-1)!.balanceChanged.id).toBe(ws);
    await new Promise((r) => setTimeout(r, 100));
    expect(personal.events).toEqual([]); // the member's own balance did not move
    for (const s of [member, owner, personal]) await s.dispose();
  });

  it('warns the pool\'s members live and keeps the warning for its OWNER and ADMINs', async () => {
    const ws = await funded('warned-owner', 0);
    const threshold = (await t.app.one<{ low_credit_threshold: number }>('SELECT low_credit_threshold FROM accounts WHERE id = $1', [ws])).low_credit_threshold;
    await adjustCredits(t.app, ws, threshold + 2, { reason: 'pool' });
    await setMember('warned-owner', ws, 'warned-admin', 'ADMIN');
    await setMember('warned-owner', ws, 'warned-member', 'MEMBER');
    const warnings = subscribe(t.app.ws({ sub: 'warned-member' }), WorkspaceWarningsDocument, { workspaceId: ws });
    await eventually(() => t.app.server.services.events.subscribers('warning', ws) === 1);
    await start('warned-member', ws, IMAGES(4)); // threshold − 2: below the level
    await warnings.waitFor(1);
    expect(warnings.events).toEqual([{ creditWarning: { level: 'LOW', balance: threshold - 2, threshold } }]);
    const expected = [{ kind: 'LOW_CREDITS', message: `${threshold - 2} credits left, below your warning level of ${threshold}. Top up with a credit pack to keep generating.` }];
    expect(await notesOf(t.app, 'warned-owner', ['LOW_CREDITS'])).toEqual(expected);
    expect(await notesOf(t.app, 'warned-admin', ['LOW_CREDITS'])).toEqual(expected);
    expect(await notesOf(t.app, 'warned-member', ['LOW_CREDITS'])).toEqual([]);
    const copies = await t.app.rows('SELECT account_id, workspace_id FROM notifications WHERE kind = $1 AND (account_id = $2 OR workspace_id = $2) ORDER BY account_id', ['LOW_CREDITS', ws]);
    expect(copies).toEqual([{ account_id: 'warned-admin', workspace_id: ws }, { account_id: 'warned-owner', workspace_id: ws }, { account_id: ws, workspace_id: null }]);
    await warnings.dispose();
  });

  it('OWNER and ADMINs set the workspace\'s auto top-up; the pool buys by itself when it falls below the level', async () => {
    const ws = await funded('auto-owner', 12);
    await setMember('auto-owner', ws, 'auto-member', 'MEMBER');
    const set = (await t.app.gql(SetAutoTopUpDocument, { input: { packCode: 'STARTER', belowCredits: 10, maxPerMonth: 2, workspaceId: ws } }, { sub: 'auto-owner' })).data!.setAutoTopUp;
    expect(set.userErrors).toEqual([]);
    await start('auto-member', ws, IMAGES(4)); // 8: below 10
    await eventually(async () => (await balanceOf(t.app, ws)) === 58);
    const view = (await t.app.gql(WorkspaceViewDocument, { id: ws }, { sub: 'auto-owner' })).data!.workspace!;
    expect(view.purchases.edges.map((e) => [e.node.packCode, e.node.status, e.node.automatic])).toEqual([['STARTER', 'COMPLETED', true]]);
    expect(await notesOf(t.app, 'auto-owner', ['AUTO_TOP_UP_COMPLETED'])).toHaveLength(1);
    expect(await notesOf(t.app, 'auto-member', ['AUTO_TOP_UP_COMPLETED'])).toEqual([]);
  });

  it('refuses bad membership input with a clear error and changes nothing', async () => {
    const ws = await funded('strict-owner', 0);
    const self = (await setMember('strict-owner', ws, ws, 'MEMBER')).data!.setWorkspaceMember;
    expect(self.userErrors).toEqual([{ code: 'INVALID_INPUT', message: 'A workspace cannot be a member of a workspace', field: ['input', 'accountId'] }]);
    const negative = await setMember('strict-owner', ws, 'someone', 'MEMBER', -1);
    expect(negative.errors!.map((e) => [e.extensions!.code, e.message])).toEqual([['BAD_USER_INPUT', 'input.monthlyLimit must not be less than 0']]);
    const gone = (await removeMember('strict-owner', ws, 'nobody-here')).data!.removeWorkspaceMember;
    expect(gone.userErrors).toEqual([{ code: 'NOT_FOUND', message: 'No member of this workspace has this account id', field: ['input', 'accountId'] }]);
    expect(await t.app.rows('SELECT account_id FROM workspace_members WHERE workspace_id = $1', [ws])).toEqual([{ account_id: 'strict-owner' }]);
  });

  it('the auditor reports a member\'s spending that differs from their jobs', async () => {
    const ws = await funded('audited-owner', 10);
    await start('audited-owner', ws, IMAGES(2));
    await t.app.audit.query(`UPDATE workspace_member_spend SET spent = spent + 1 WHERE workspace_id = $1`, [ws]);
    const { month } = await t.app.one<{ month: string }>('SELECT month::text FROM workspace_member_spend WHERE workspace_id = $1', [ws]);
    expect((await ledgerViolations(t.app.audit)).filter((v) => v.includes(ws))).toEqual([
      `workspace member spending matches their jobs: workspace ${ws}, member audited-owner, ${month}: jobs debited 2 and got back 0, the member's spending says 3 and 0`,
    ]);
    await t.app.audit.query(`UPDATE workspace_member_spend SET spent = spent - 1 WHERE workspace_id = $1`, [ws]);
  });
});
