/**
 * Tenant isolation. Every operation that takes an id (found by walking schema/schema.graphql
 * for ID arguments and ID fields of input objects, so a new one fails the coverage check until
 * it is classified here) is aimed by user A at user B's object: the answer must be identical —
 * same status, shape, code and message — to aiming at an id that does not exist, and B's object
 * must not change. Events: with A and B subscribed to balanceChanged, creditWarning and
 * jobUpdated, changes driven on B reach B exactly and A never.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { getNamedType } from 'graphql';
import type { Client as WsClient } from 'graphql-ws';
import { Role } from '../../src/common/auth/role.enum';
import { scale, seedFor } from '../helpers/scale';
import { eventually, useTestApp } from '../helpers/test-app';
import { argumentSites, documentFor, leafPaths, loadSchema, setAt, type ArgSite } from './schema-walk';

const t = useTestApp({ NODE_ENV: 'production' });
const schema = loadSchema();

const A = 'iso-a';
const B = 'iso-b';
const ADMIN = 'iso-admin';
const WORKER = 'iso-worker';
const IMAGE = { type: 'IMAGE', imageQuality: 'STANDARD' };

type Kind = 'job' | 'runningJob' | 'quote' | 'purchase' | 'notification' | 'account' | 'refundRequest' | 'workspace' | 'invitee';

/** What each id position names. A new id argument in the schema must be added here (the coverage check says so). */
const ID_KINDS: Record<string, Kind> = {
  'Query.job:id': 'job',
  'Query.account:id': 'account',
  'Mutation.cancelGeneration:jobId': 'job',
  'Mutation.startGeneration:input.quoteId': 'quote',
  'Mutation.requestRefund:input.purchaseId': 'purchase',
  'Mutation.markNotificationsRead:ids': 'notification',
  'Mutation.readNotifications:ids': 'notification',
  'Mutation.adjustCredits:input.accountId': 'account',
  'Mutation.reviewRefundRequest:input.id': 'refundRequest',
  'Mutation.reportGenerationProgress:jobId': 'runningJob',
  'Mutation.completeGenerationJob:jobId': 'runningJob',
  'Mutation.failGenerationJob:jobId': 'runningJob',
  'Mutation.acknowledgeGenerationCancel:jobId': 'runningJob',
  'Subscription.jobUpdated:jobId': 'job',
  // B's workspace, aimed at by A (no member of it) in every position that takes one.
  'Query.workspace:id': 'workspace',
  'Query.quote:workspaceId': 'workspace',
  'Query.planChangePreview:workspaceId': 'workspace',
  'Mutation.startGeneration:input.workspaceId': 'workspace',
  'Mutation.purchaseCreditPack:input.workspaceId': 'workspace',
  'Mutation.changePlan:input.workspaceId': 'workspace',
  'Mutation.cancelPlan:workspaceId': 'workspace',
  'Mutation.requestRefund:input.workspaceId': 'workspace',
  'Mutation.setAutoTopUp:input.workspaceId': 'workspace',
  'Mutation.disableAutoTopUp:workspaceId': 'workspace',
  'Mutation.setWorkspaceMember:input.workspaceId': 'workspace',
  'Mutation.removeWorkspaceMember:input.workspaceId': 'workspace',
  'Subscription.balanceChanged:workspaceId': 'workspace',
  'Subscription.creditWarning:workspaceId': 'workspace',
  'Subscription.jobUpdated:workspaceId': 'workspace',
  'Subscription.notificationAdded:workspaceId': 'workspace',
  // B's account as a member of A's own workspaces: removing B (not a member there) is refused as an
  // unknown account; adding B is the operation itself (inviting anyone by id: see below).
  'Mutation.removeWorkspaceMember:input.accountId': 'account',
  'Mutation.setWorkspaceMember:input.accountId': 'invitee',
};

/** Complete arguments for each site around the id under test. */
const BASE_ARGS: Record<string, Record<string, unknown>> = {
  'Query.job': {},
  'Query.account': {},
  'Mutation.cancelGeneration': {},
  'Mutation.startGeneration': { input: { settings: IMAGE, prompt: 'isolation' } },
  'Mutation.requestRefund': { input: { reason: 'isolation', purchaseId: '00000000-0000-4000-8000-00000000cafe' } },
  'Mutation.markNotificationsRead': {},
  'Mutation.readNotifications': {},
  'Mutation.adjustCredits': { input: { amount: 5, reason: 'isolation' } },
  'Mutation.reviewRefundRequest': { input: { approve: true, note: 'isolation' } },
  'Mutation.reportGenerationProgress': { progress: 50 },
  'Mutation.completeGenerationJob': { resultUrls: ['https://cdn.example/iso.png'] },
  'Mutation.failGenerationJob': { reason: 'isolation' },
  'Mutation.acknowledgeGenerationCancel': {},
  'Subscription.jobUpdated': {},
  'Mutation.setAutoTopUp': { input: { packCode: 'STARTER', belowCredits: 10, maxPerMonth: 1 } },
  'Mutation.disableAutoTopUp': {},
  'Query.workspace': {},
  'Query.quote': { settings: IMAGE },
  'Query.planChangePreview': { tier: 'CREATOR', interval: 'MONTHLY' },
  'Mutation.purchaseCreditPack': { input: { packCode: 'STARTER' } },
  'Mutation.changePlan': { input: { tier: 'CREATOR', interval: 'MONTHLY' } },
  'Mutation.cancelPlan': {},
  'Subscription.balanceChanged': {},
  'Subscription.creditWarning': {},
  'Subscription.notificationAdded': {},
  // Filled in once A's workspaces exist (the test's setup).
  'Mutation.setWorkspaceMember': {},
  'Mutation.removeWorkspaceMember': {},
};

interface Answer {
  status: number;
  body: string;
}

async function post(query: string, variables: Record<string, unknown>, sub: string, role: Role): Promise<Answer> {
  const res = await fetch(t.app.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${await t.app.token(sub, role)}` },
    body: JSON.stringify({ query, variables }),
  });
  return { status: res.status, body: await res.text() };
}

/** A subscription over graphql-ws that records what it receives. */
function listen(client: WsClient, query: string, variables?: Record<string, unknown>) {
  const events: unknown[] = [];
  const errors: unknown[] = [];
  let completed = false;
  const stop = client.subscribe({ query, variables }, { next: (v) => (v.errors ? errors.push(v.errors) : events.push(v.data)), error: (e) => errors.push(e), complete: () => (completed = true) });
  return { events, errors, stop, get completed() { return completed; } };
}

async function must<T = Record<string, unknown>>(query: string, variables: Record<string, unknown> | undefined, sub: string, role: Role = Role.USER): Promise<T> {
  const r = await t.app.raw<T>(query, variables, { sub, role });
  if (!r.data || r.errors) throw new Error(`fixture failed: ${JSON.stringify(r.errors)}`);
  return r.data;
}

const START = `mutation($i: StartGenerationInput!) { startGeneration(input: $i) { job { id } balance { available } userErrors { code } } }`;

async function start(sub: string): Promise<string> {
  const d = await must<{ startGeneration: { job: { id: string } } }>(START, { i: { settings: IMAGE, prompt: `job of ${sub}` } }, sub);
  return d.startGeneration.job.id;
}

describe('tenant isolation', () => {
  it('delivers every event of B to B exactly and none to A, on balanceChanged, creditWarning and jobUpdated', async () => {
    const a = 'iso-events-a';
    const b = 'iso-events-b';
    await must(`{ me { id } }`, undefined, a);
    await must(`{ me { id } }`, undefined, b);
    const clientA = t.app.ws({ sub: a });
    const clientB = t.app.ws({ sub: b });
    const SEL = '{ id status progress credits }';
    // Every subscription of both accounts; A also aims jobUpdated at an id of B's (set once B has a job) and at a random one.
    const subsA = {
      warning: listen(clientA, 'subscription { creditWarning { level balance threshold } }'),
      jobs: listen(clientA, `subscription { jobUpdated ${SEL} }`),
      randomJob: listen(clientA, `subscription($j: ID) { jobUpdated(jobId: $j) ${SEL} }`, { j: randomUUID() }),
      balance: listen(clientA, 'subscription { balanceChanged { available lowCreditThreshold } }'),
    };
    const subsB = {
      warning: listen(clientB, 'subscription { creditWarning { level balance threshold } }'),
      jobs: listen(clientB, `subscription { jobUpdated ${SEL} }`),
      balance: listen(clientB, 'subscription { balanceChanged { available lowCreditThreshold } }'),
    };
    // Live once each balance subscription (subscribed last on its socket) has seen a poke.
    const poke = (sub: string, threshold: number) => t.app.raw(`mutation($t: Int!) { setLowCreditThreshold(threshold: $t) { available } }`, { t: threshold }, { sub });
    await eventually(async () => {
      if (!subsA.balance.events.length) await poke(a, 1);
      if (!subsB.balance.events.length) await poke(b, 1);
      await new Promise((r) => setTimeout(r, 50));
      return subsA.balance.events.length > 0 && subsB.balance.events.length > 0;
    }, 10_000);
    await new Promise((r) => setTimeout(r, 300));
    for (const s of [...Object.values(subsA), ...Object.values(subsB)]) s.events.length = 0;

    // B's life: a threshold, a generation run to its end by a worker, one canceled, a pack, an admin correction.
    const b0 = (await must<{ me: { balance: { available: number } } }>(`{ me { balance { available } } }`, undefined, b)).me.balance.available;
    await poke(b, b0); // 1 balance event; the balance sits at the threshold
    const job1 = await start(b); // balance 2, LOW 1, job 1
    const bus = t.app.server.services.events;
    const [jobsA, jobsB] = [bus.subscribers('job', a), bus.subscribers('job', b)];
    const aimed = listen(clientA, `subscription($j: ID) { jobUpdated(jobId: $j) ${SEL} }`, { j: job1 });
    const bOne = listen(clientB, `subscription($j: ID) { jobUpdated(jobId: $j) ${SEL} }`, { j: job1 });
    // Both new subscriptions are live on the server before the job moves (not: after some time).
    await eventually(() => bus.subscribers('job', a) === jobsA + 1 && bus.subscribers('job', b) === jobsB + 1, 10_000);
    await must(`mutation { claimGenerationJob { id } }`, undefined, WORKER, Role.WORKER); // job 2
    await must(`mutation($j: ID!) { reportGenerationProgress(jobId: $j, progress: 50) { id } }`, { j: job1 }, WORKER, Role.WORKER); // job 3
    await must(`mutation($j: ID!) { completeGenerationJob(jobId: $j, resultUrls: ["https://cdn.example/b.png"]) { id } }`, { j: job1 }, WORKER, Role.WORKER); // job 4
    const job2 = await start(b); // balance 3, job 5
    await must(`mutation($j: ID!) { cancelGeneration(jobId: $j) { job { id } } }`, { j: job2 }, b); // balance 4 (refund), job 6
    await must(`mutation { purchaseCreditPack(input: { packCode: "STARTER" }) { purchase { id } } }`, undefined, b); // balance 5, LOW re-armed
    const now = (await must<{ me: { balance: { available: number } } }>(`{ me { balance { available } } }`, undefined, b)).me.balance.available;
    await must(
      `mutation($i: AdjustCreditsInput!) { adjustCredits(input: $i) { userErrors { code } } }`,
      { i: { accountId: b, amount: -(now - b0 + 1), reason: 'isolation: back below the threshold' } },
      ADMIN,
      Role.ADMIN,
    ); // balance 6, LOW 2

    await eventually(() => subsB.balance.events.length >= 6 && subsB.jobs.events.length >= 6 && subsB.warning.events.length >= 2 && bOne.events.length >= 4, 10_000).catch((e) => {
      throw new Error(`${e}: B got ${JSON.stringify({ balance: subsB.balance.events, warning: subsB.warning.events, jobs: subsB.jobs.events, one: bOne.events, errors: [subsB.balance.errors, subsB.jobs.errors, bOne.errors] })}`);
    });
    await new Promise((r) => setTimeout(r, 500)); // anything late or misrouted arrives meanwhile
    const jobIds = (xs: unknown[]) => xs.map((e) => (e as { jobUpdated: { id: string; status: string } }).jobUpdated);
    expect(subsB.balance.events).toHaveLength(6);
    expect(subsB.warning.events.map((e) => (e as { creditWarning: { level: string } }).creditWarning.level)).toEqual(['LOW', 'LOW']);
    expect(jobIds(subsB.jobs.events).map((j) => [j.id === job1 ? 'job1' : j.id === job2 ? 'job2' : j.id, j.status])).toEqual([
      ['job1', 'QUEUED'],
      ['job1', 'RUNNING'],
      ['job1', 'RUNNING'],
      ['job1', 'SUCCEEDED'],
      ['job2', 'QUEUED'],
      ['job2', 'CANCELED'],
    ]);
    expect(jobIds(bOne.events).map((j) => j.status)).toEqual(['QUEUED', 'RUNNING', 'RUNNING', 'SUCCEEDED']); // the job as it was on subscribe, then its changes
    // A heard nothing at all — not through its own subscriptions, nor aiming at B's job or at a random id.
    const heardByA = { ...Object.fromEntries(Object.entries(subsA).map(([k, s]) => [k, [s.events.length, s.errors.length]])), aimedAtB: [aimed.events.length, aimed.errors.length] };
    expect(heardByA).toEqual({ warning: [0, 0], jobs: [0, 0], randomJob: [0, 0], balance: [0, 0], aimedAtB: [0, 0] });
    // And A's subscriptions are alive: A's own change reaches A, once.
    await poke(a, 7);
    await eventually(() => subsA.balance.events.length === 1);
    expect(subsA.balance.events).toEqual([{ balanceChanged: expect.objectContaining({ lowCreditThreshold: 7 }) }]);
    expect(subsB.balance.events).toHaveLength(6);
    await clientA.dispose();
    await clientB.dispose();
  });

  it("answers A aiming at B's object exactly as at an id that does not exist, for every id argument, and leaves B's object unchanged", async () => {
    const seed = seedFor('tenant-isolation/ids', 70707);
    const rounds = scale(1, 8);
    for (const sub of [A, B, ADMIN, WORKER, 'iso-worker-2']) {
      await t.app.raw(`{ quote(settings: { type: IMAGE, imageQuality: STANDARD }) { id } }`, undefined, { sub, role: sub === ADMIN ? Role.ADMIN : sub.startsWith('iso-worker') ? Role.WORKER : Role.USER });
    }
    // B's objects of every kind.
    const bJob = await start(B);
    const bRunning = await start(B);
    // The worker claims B's jobs in age order until it holds bRunning.
    for (let i = 0; i < 5; i++) {
      const c = await must<{ claimGenerationJob: { id: string } | null }>(`mutation { claimGenerationJob { id } }`, undefined, WORKER, Role.WORKER);
      if (!c.claimGenerationJob || c.claimGenerationJob.id === bRunning) break;
    }
    const bQueued = await start(B);
    const bQuote = (await must<{ quote: { id: string } }>(`{ quote(settings: { type: IMAGE, imageQuality: STANDARD }) { id } }`, undefined, B)).quote.id;
    const bPurchase = (await must<{ purchaseCreditPack: { purchase: { id: string } } }>(`mutation { purchaseCreditPack(input: { packCode: "STARTER" }) { purchase { id } } }`, undefined, B)).purchaseCreditPack.purchase.id;
    const bNotification = (await must<{ me: { notifications: { edges: { node: { id: string } }[] } } }>(`{ me { notifications(unreadOnly: true) { edges { node { id } } } } }`, undefined, B)).me.notifications.edges[0].node.id;
    // A refund request of B's: a second pack, refunded (decided at once under the policy).
    const p2 = (await must<{ purchaseCreditPack: { purchase: { id: string } } }>(`mutation { purchaseCreditPack(input: { packCode: "STARTER", idempotencyKey: "iso-2" }) { purchase { id } } }`, undefined, B)).purchaseCreditPack.purchase.id;
    const bRefund = (await must<{ requestRefund: { refundRequest: { id: string } } }>(`mutation($p: ID!) { requestRefund(input: { purchaseId: $p }) { refundRequest { id } } }`, { p: p2 }, B)).requestRefund.refundRequest.id;
    await must(`mutation($j: ID!) { completeGenerationJob(jobId: $j, resultUrls: ["https://cdn.example/done.png"]) { id } }`, { j: bJob }, WORKER, Role.WORKER);
    await must(`mutation { setAutoTopUp(input: { packCode: "STARTER", belowCredits: 5, maxPerMonth: 2 }) { userErrors { code } } }`, undefined, B);
    // B's workspace, with a pack, its auto top-up and a job; and two of A's own, where A aims at B's account.
    const bWorkspace = (await must<{ createWorkspace: { workspace: { id: string } } }>(`mutation { createWorkspace(input: { name: "B's studio" }) { workspace { id } } }`, undefined, B)).createWorkspace.workspace.id;
    await must(`mutation($w: ID) { purchaseCreditPack(input: { packCode: "STARTER", workspaceId: $w }) { userErrors { code } } }`, { w: bWorkspace }, B);
    await must(`mutation($w: ID) { setAutoTopUp(input: { packCode: "STARTER", belowCredits: 5, maxPerMonth: 2, workspaceId: $w }) { userErrors { code } } }`, { w: bWorkspace }, B);
    const bWorkspaceJob = (await must<{ startGeneration: { job: { id: string } } }>(
      `mutation($w: ID) { startGeneration(input: { settings: { type: IMAGE, imageQuality: STANDARD }, prompt: "isolation", workspaceId: $w }) { job { id } } }`, { w: bWorkspace }, B,
    )).startGeneration.job.id;
    const aWorkspace = async () => (await must<{ createWorkspace: { workspace: { id: string } } }>(`mutation { createWorkspace(input: { name: "A's" }) { workspace { id } } }`, undefined, A)).createWorkspace.workspace.id;
    BASE_ARGS['Mutation.setWorkspaceMember'] = { input: { workspaceId: await aWorkspace(), accountId: A, role: 'MEMBER' } };
    BASE_ARGS['Mutation.removeWorkspaceMember'] = { input: { workspaceId: await aWorkspace(), accountId: 'iso-nobody-member' } };
    // B's objects of each kind, in each state worth aiming at (a queued, a running, a finished job).
    const objects: Record<Kind, string[]> = {
      job: [bQueued, bRunning, bJob, bWorkspaceJob],
      runningJob: [bRunning, bQueued, bJob],
      quote: [bQuote],
      purchase: [bPurchase, p2],
      notification: [bNotification],
      account: [B],
      refundRequest: [bRefund],
      workspace: [bWorkspace],
      invitee: [B],
    };

    /** B's rows, to prove nothing of B's moved. */
    const stateOfB = async () =>
      (
        await t.app.audit.query(
          `SELECT concat_ws('|',
             (SELECT string_agg(id || status || progress || refunded, ',' ORDER BY id) FROM generation_jobs WHERE account_id = $1),
             (SELECT string_agg(id || status, ',' ORDER BY id) FROM purchases WHERE account_id = $1),
             (SELECT string_agg(id || coalesce(read_at::text, '-'), ',' ORDER BY id) FROM notifications WHERE account_id = $1),
             (SELECT string_agg(id || status, ',' ORDER BY id) FROM refund_requests WHERE account_id = $1),
             (SELECT count(*) || ':' || sum(amount) FROM ledger_entries WHERE account_id = $1),
             (SELECT available || ':' || low_credit_threshold || tier FROM accounts WHERE id = $1),
             (SELECT enabled || pack_code || below_credits || max_per_month || updated_at FROM auto_top_ups WHERE account_id = $1),
             (SELECT string_agg(a.id || a.available || a.tier || coalesce(t.updated_at::text, '-'), ',' ORDER BY a.id)
                FROM workspace_members m JOIN accounts a ON a.id = m.workspace_id LEFT JOIN auto_top_ups t ON t.account_id = a.id
               WHERE m.account_id = $1 AND m.role = 'OWNER'),
             (SELECT string_agg(w.workspace_id || w.account_id || w.role, ',' ORDER BY w.workspace_id, w.account_id)
                FROM workspace_members w WHERE w.workspace_id IN (SELECT workspace_id FROM workspace_members WHERE account_id = $1 AND role = 'OWNER'))) AS s`,
          [B],
        )
      ).rows[0].s as string;

    // Every id position in the schema, classified.
    const positions: { site: ArgSite; path: string[]; key: string; list: boolean }[] = [];
    for (const site of argumentSites(schema)) {
      for (const leaf of leafPaths(site.args)) {
        if (getNamedType(leaf.type).name !== 'ID') continue;
        const key = `${site.id}:${leaf.path.join('.')}`;
        positions.push({ site, path: leaf.path, key, list: leaf.type.toString().startsWith('[') });
      }
    }
    expect(positions.map((p) => p.key).sort()).toEqual(Object.keys(ID_KINDS).sort());

    // Callers: A as a user for every position; and, for admin and worker operations, the roles that may call them aiming across.
    const differences: string[] = [];
    let compared = 0;
    const fakeFor = (kind: Kind, r: number) => {
      const uuid = fc.sample(fc.uuid(), { seed: seed + r, numRuns: 1 })[0];
      return kind === 'account' || kind === 'invitee' ? `iso-nobody-${r}` : kind === 'workspace' ? `workspace:${uuid}` : uuid;
    };
    const normalise = (x: Answer, id: string) => ({ status: x.status, body: x.body.split(id).join('<id>') });
    for (let r = 0; r < rounds; r++) {
      for (const p of positions) {
        const kind = ID_KINDS[p.key];
        for (const [n, real] of objects[kind].entries()) {
        const fake = fakeFor(kind, r * 10 + n);
        const base = BASE_ARGS[p.site.id] ?? {};
        const args = (id: string) => setAt(base, p.path, p.list ? [id] : id);
        const doc = documentFor(p.site);
        const callers: [string, Role][] = [[A, Role.USER]];
        if (p.site.operation === 'subscription') {
          // Aiming a subscription: both stay open and silent; the event test proves nothing arrives.
          const client = t.app.ws({ sub: A });
          const x = listen(client, doc, args(real));
          const y = listen(client, doc, args(fake));
          await new Promise((res) => setTimeout(res, 200));
          compared++;
          if (JSON.stringify([x.events, x.errors, x.completed]) !== JSON.stringify([y.events, y.errors, y.completed])) differences.push(`${p.key} (ws)`);
          await client.dispose();
          continue;
        }
        for (const [sub, role] of callers) {
          const before = await stateOfB();
          const onReal = await post(doc, args(real), sub, role);
          const onFake = await post(doc, args(fake), sub, role);
          compared++;
          const x = normalise(onReal, real);
          const y = normalise(onFake, fake);
          // Inviting B into A's own workspace is allowed (a workspace adds anyone by id): it answers with
          // the new membership (its own join time, the member count) and must change nothing of B's.
          if (kind !== 'invitee' && JSON.stringify(x) !== JSON.stringify(y)) differences.push(`${p.key} as ${sub}: B's ${kind} ${JSON.stringify(x)} vs none ${JSON.stringify(y)}`);
          if ((await stateOfB()) !== before) differences.push(`${p.key} as ${sub}: B's state changed`);
          if (kind === 'invitee') continue;
          if (onReal.status >= 500 || !/"errors"|"userErrors":\[\{|"job":null|"account":null|"workspace":null|"markNotificationsRead":0|"readNotifications":\{"notifications":\[\]/.test(onReal.body)) {
            differences.push(`${p.key} as ${sub}: not refused: ${onReal.body.slice(0, 200)}`);
          }
        }
        }
      }
    }
    // Workers are the platform's own (they may claim any account's job): a second worker aiming at
    // a job the first holds is told so (FORBIDDEN), which differs from an unknown id (NOT_FOUND).
    // Not a tenant boundary; printed so the behaviour is on record.
    const w2 = await post(`mutation($j: ID!) { reportGenerationProgress(jobId: $j, progress: 60) { id } }`, { j: bRunning }, 'iso-worker-2', Role.WORKER);
    const w2fake = await post(`mutation($j: ID!) { reportGenerationProgress(jobId: $j, progress: 60) { id } }`, { j: randomUUID() }, 'iso-worker-2', Role.WORKER);
    const codeOf = (x: Answer) => JSON.parse(x.body).errors?.[0]?.extensions?.code;
    process.stdout.write(`[tenant-isolation/ids] worker aiming at another worker's job: ${codeOf(w2)}; at an unknown id: ${codeOf(w2fake)}\n`);
    process.stdout.write(`[tenant-isolation/ids] ${compared} comparisons over ${positions.length} id positions (${new Set(positions.map((p) => p.site.id)).size} operations)\n`);
    expect(differences).toEqual([]);
  });
});

