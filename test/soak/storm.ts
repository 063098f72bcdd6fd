/**
 * The soak's keyed storm: users, workspace members, an operator and GPU workers sending every
 * money-moving mutation to two API instances, one instance at a time being killed. Each client
 * sends one operation at a time; an unanswered one is sent again with the same key and input,
 * to the other instance, until it is answered. A round's operations are reconciled against the
 * ledger when the round ends (reconcileRound).
 */
import http from 'node:http';
import type { Pool } from 'pg';
import { Role } from '../../src/common/auth/role.enum';
import { IMPOSSIBLE_DEBIT, rng, sleep, tokenFor, type ApiProcess } from '../reliability/crash-support';

/** Kept-alive connections (node's own client costs the load generator less CPU per request than fetch). */
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

interface Answered {
  status: number;
  data?: Record<string, any> | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

/** One GraphQL POST; rejects with the socket's error code when nothing answers. */
async function post(base: string, query: string, variables: Record<string, unknown>, sub: string, role: Role, timeoutMs: number): Promise<Answered> {
  const token = await tokenFor(sub, role);
  const body = JSON.stringify({ query, variables });
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}/graphql`, { method: 'POST', agent, timeout: timeoutMs, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${token}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          resolve({ status: res.statusCode ?? 0, ...JSON.parse(text) });
        } catch {
          resolve({ status: res.statusCode ?? 0, errors: [{ message: `not JSON: ${text.slice(0, 200)}` }] });
        }
      });
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end(body);
  });
}

export const ADMIN = 'soak-admin';
export type Kind = 'start' | 'member-start' | 'adjust' | 'purchase' | 'cancel' | 'set-member' | 'auto-top-up' | 'claim' | 'complete' | 'fail' | 'ack-cancel';

export interface SoakOp {
  kind: Kind;
  sub: string;
  role: Role;
  /** The holder whose balance the operation moves (a user's own account or a workspace). */
  account: string;
  key?: string;
  amount: number;
  jobId?: string;
  workspaceId?: string;
  attempts: number;
  outcome?: { applied: true; delta: number; ref?: string } | { applied: false; code: string };
}

export interface Cast {
  users: string[];
  /** Workspace id → its members (users) and owner. */
  workspaces: { id: string; owner: string; members: string[] }[];
  workers: string[];
}

const START = `mutation($input: StartGenerationInput!) { startGeneration(input: $input) { job { id credits } userErrors { code } } }`;
const ADJUST = `mutation($input: AdjustCreditsInput!) { adjustCredits(input: $input) { entry { id amount } userErrors { code } } }`;
const PURCHASE = `mutation($input: PurchaseCreditPackInput!) { purchaseCreditPack(input: $input) { purchase { id status credits } userErrors { code } } }`;
const CANCEL = `mutation($j: ID!) { cancelGeneration(jobId: $j) { job { id status } userErrors { code } } }`;
const SET_MEMBER = `mutation($input: WorkspaceMemberInput!) { setWorkspaceMember(input: $input) { member { role } userErrors { code } } }`;
const SET_TOP_UP = `mutation($input: SetAutoTopUpInput!) { setAutoTopUp(input: $input) { autoTopUp { enabled } userErrors { code } } }`;
const DISABLE_TOP_UP = `mutation($w: ID) { disableAutoTopUp(workspaceId: $w) { autoTopUp { enabled } userErrors { code } } }`;
const CLAIM = `mutation { claimGenerationJob { id cancelRequested } }`;
const COMPLETE = `mutation($j: ID!) { completeGenerationJob(jobId: $j, resultUrls: ["https://cdn.example/soak.png"]) { id status } }`;
const FAIL = `mutation($j: ID!) { failGenerationJob(jobId: $j, reason: "soak") { id status } }`;
const ACK = `mutation($j: ID!) { acknowledgeGenerationCancel(jobId: $j) { id status } }`;

/** userError codes each kind may answer with (anything else is a finding). */
const REFUSALS: Record<Kind, string[]> = {
  start: ['INSUFFICIENT_CREDITS'],
  'member-start': ['INSUFFICIENT_CREDITS', 'MEMBER_LIMIT_REACHED'],
  adjust: ['INSUFFICIENT_CREDITS'],
  purchase: [],
  // A retried cancel finds its job already canceled; a job may have finished meanwhile.
  cancel: ['INVALID_STATE', 'NOT_FOUND'],
  'set-member': [],
  'auto-top-up': [],
  claim: [],
  // A worker's job may have been canceled, or failed by the lease sweep, before it reports.
  complete: ['INVALID_STATE', 'NOT_FOUND'],
  fail: ['INVALID_STATE', 'NOT_FOUND'],
  'ack-cancel': ['INVALID_STATE', 'NOT_FOUND'],
};

/** GraphQL error codes that mean "not now": the attempt is unanswered and is sent again. */
const RETRY_CODES = new Set(['SERVICE_UNAVAILABLE']);

export class Storm {
  ops: SoakOp[] = [];
  private stopping = false;
  private runs: Promise<void>[] = [];
  answered = 0;
  attemptsUnanswered = 0;
  /** Answers that are neither a result, a known refusal nor SERVICE_UNAVAILABLE. */
  readonly findings: string[] = [];
  failure?: Error;
  private seq = 0;
  /** Jobs started (per user) in this process, for cancels. */
  private recentJobs = new Map<string, string[]>();
  readonly byKind = new Map<Kind, number>();
  /** This round's slowest operation (sent to answered), for the round's log line. */
  slowest?: { kind: Kind; ms: number; attempts: number; last?: string };

  constructor(
    private readonly apis: ApiProcess[],
    private readonly cast: Cast,
    private readonly opts: { seed: number; tag: string; clients: number; giveUpMs: number },
  ) {}

  private base(prefer: number): string {
    const live = this.apis.filter((a) => a.readyAt > 0);
    return (live.length ? live[prefer % live.length] : this.apis[prefer % this.apis.length]).base;
  }

  /** The next operation of a user client (seeded). */
  private plan(client: number, r: () => number): SoakOp {
    const { users, workspaces } = this.cast;
    const user = users[Math.floor(r() * users.length)];
    const x = r();
    const key = `${this.opts.tag}-c${client}-${this.seq++}`;
    const op = (o: Partial<SoakOp> & Pick<SoakOp, 'kind' | 'sub' | 'account'>): SoakOp => ({ role: Role.USER, amount: 0, attempts: 0, key, ...o });
    if (x < 0.36) return op({ kind: 'start', sub: user, account: user, amount: 1 + Math.floor(r() * 2) });
    if (x < 0.52) {
      const w = workspaces[Math.floor(r() * workspaces.length)];
      const m = w.members[Math.floor(r() * w.members.length)];
      return op({ kind: 'member-start', sub: m, account: w.id, workspaceId: w.id, amount: 1 + Math.floor(r() * 2) });
    }
    if (x < 0.74) {
      const onWorkspace = r() < 0.25;
      const account = onWorkspace ? workspaces[Math.floor(r() * workspaces.length)].id : user;
      const y = r();
      // One adjustment in ten takes more than any balance holds: always refused.
      const amount = y < 0.1 ? -IMPOSSIBLE_DEBIT : y < 0.5 ? -1 - Math.floor(r() * 3) : 1 + Math.floor(r() * 3);
      return op({ kind: 'adjust', sub: ADMIN, role: Role.ADMIN, account, amount });
    }
    // Packs are rare: balances fall below the auto top-up level (150) and the automatic purchases run.
    if (x < 0.745) return op({ kind: 'purchase', sub: user, account: user });
    if (x < 0.8) return op({ kind: 'start', sub: user, account: user, amount: 1 });
    if (x < 0.92) {
      const jobs = this.recentJobs.get(user);
      const jobId = jobs?.length ? jobs.splice(Math.floor(r() * jobs.length), 1)[0] : undefined;
      if (jobId) return op({ kind: 'cancel', sub: user, account: user, jobId, key: undefined });
      return op({ kind: 'start', sub: user, account: user, amount: 1 });
    }
    if (x < 0.97) {
      // The owner sets a member's monthly limit: mostly none, sometimes one a busy member reaches.
      const w = workspaces[Math.floor(r() * workspaces.length)];
      const m = w.members[1 + Math.floor(r() * (w.members.length - 1))]; // not the owner (exactly one OWNER)
      const limit = r() < 0.7 ? null : 20 + Math.floor(r() * 200);
      return op({ kind: 'set-member', sub: w.owner, account: w.id, workspaceId: w.id, jobId: m, amount: limit ?? -1, key: undefined });
    }
    // Auto top-up turned on (mostly) or off, for a user or (by its owner) a workspace.
    const w = r() < 0.3 ? workspaces[Math.floor(r() * workspaces.length)] : undefined;
    return op({ kind: 'auto-top-up', sub: w ? w.owner : user, account: w ? w.id : user, workspaceId: w?.id, amount: r() < 0.8 ? 1 : 0, key: undefined });
  }

  private request(op: SoakOp): [string, Record<string, unknown>] {
    switch (op.kind) {
      case 'start':
      case 'member-start':
        return [START, { input: { settings: { type: 'IMAGE', imageQuality: 'STANDARD', count: op.amount }, prompt: `soak ${op.key}`, idempotencyKey: op.key, ...(op.workspaceId ? { workspaceId: op.workspaceId } : {}) } }];
      case 'adjust':
        return [ADJUST, { input: { accountId: op.account, amount: op.amount, reason: `soak ${op.key}`, idempotencyKey: op.key } }];
      case 'purchase':
        return [PURCHASE, { input: { packCode: 'STARTER', idempotencyKey: op.key } }];
      case 'cancel':
        return [CANCEL, { j: op.jobId }];
      case 'set-member':
        return [SET_MEMBER, { input: { workspaceId: op.workspaceId, accountId: op.jobId, role: 'MEMBER', monthlyLimit: op.amount < 0 ? null : op.amount } }];
      case 'auto-top-up':
        return op.amount
          ? [SET_TOP_UP, { input: { packCode: 'STARTER', belowCredits: 150, maxPerMonth: 31, ...(op.workspaceId ? { workspaceId: op.workspaceId } : {}) } }]
          : [DISABLE_TOP_UP, { w: op.workspaceId ?? null }];
      case 'claim':
        return [CLAIM, {}];
      case 'complete':
        return [COMPLETE, { j: op.jobId }];
      case 'fail':
        return [FAIL, { j: op.jobId }];
      case 'ack-cancel':
        return [ACK, { j: op.jobId }];
    }
  }

  /** One attempt: the outcome, or why it went unanswered. */
  private async attempt(base: string, op: SoakOp): Promise<SoakOp['outcome'] | string> {
    const [query, variables] = this.request(op);
    let res;
    try {
      res = await post(base, query, variables, op.sub, op.role, 20000);
    } catch (e) {
      return `network: ${(e as { code?: string }).code ?? (e as Error).message}`;
    }
    const code = res.errors?.[0]?.extensions?.code ?? (res.errors?.length ? res.errors[0].message : undefined);
    if (code && RETRY_CODES.has(code)) return `graphql: ${code}`;
    if (res.status === 503) return 'http 503';
    const payload = res.data && (Object.values(res.data)[0] as Record<string, any> | null);
    if (code) {
      // Worker mutations answer a job in the wrong state with an error, not userErrors.
      if (REFUSALS[op.kind].includes(code) && ['complete', 'fail', 'ack-cancel'].includes(op.kind)) return { applied: false, code };
      this.findings.push(`${op.kind} ${op.key ?? op.jobId}: answered ${code} (HTTP ${res.status}): ${res.errors?.[0]?.message}`);
      return { applied: false, code };
    }
    if (res.status !== 200) return `http ${res.status}`;
    if (op.kind === 'claim') return { applied: true, delta: 0, ref: payload?.id, ...(payload?.cancelRequested ? { cancelRequested: true } : {}) } as SoakOp['outcome'];
    if (!payload) {
      this.findings.push(`${op.kind} ${op.key}: no data`);
      return { applied: false, code: 'no data' };
    }
    if (payload.userErrors?.length) {
      const c = payload.userErrors[0].code as string;
      if (!REFUSALS[op.kind].includes(c)) this.findings.push(`${op.kind} ${op.key ?? op.jobId} on ${op.account}: refused ${c}`);
      return { applied: false, code: c };
    }
    if (payload.job && (op.kind === 'start' || op.kind === 'member-start')) return { applied: true, delta: -payload.job.credits, ref: payload.job.id };
    if (op.kind === 'adjust' && payload.entry) return { applied: true, delta: payload.entry.amount, ref: payload.entry.id };
    if (op.kind === 'purchase' && payload.purchase?.status === 'COMPLETED') return { applied: true, delta: payload.purchase.credits, ref: payload.purchase.id };
    if (['cancel', 'set-member', 'auto-top-up', 'complete', 'fail', 'ack-cancel'].includes(op.kind)) return { applied: true, delta: 0, ref: payload.id ?? payload.job?.id };
    this.findings.push(`${op.kind} ${op.key}: unexpected payload ${JSON.stringify(payload).slice(0, 200)}`);
    return { applied: false, code: 'unexpected payload' };
  }

  /** Sends `op` until it is answered (alternating instances after a failure). */
  async execute(op: SoakOp, prefer: number): Promise<SoakOp> {
    this.ops.push(op);
    this.byKind.set(op.kind, (this.byKind.get(op.kind) ?? 0) + 1);
    const sentAt = Date.now();
    let last: string | undefined;
    for (let i = prefer; ; i++) {
      op.attempts++;
      const out = await this.attempt(this.base(i), op);
      if (typeof out !== 'string') {
        op.outcome = out;
        this.answered++;
        const ms = Date.now() - sentAt;
        if (!this.slowest || ms > this.slowest.ms) this.slowest = { kind: op.kind, ms, attempts: op.attempts, last };
        return op;
      }
      last = out;
      this.attemptsUnanswered++;
      if (Date.now() - sentAt > this.opts.giveUpMs) throw new Error(`operation ${op.kind} ${op.key ?? op.jobId} unanswered after ${op.attempts} attempts (${out})`);
      // Backing off (20 ms doubling to 1 s, jittered): a database restart is not hammered by every client.
      await sleep(Math.min(1000, 20 * 2 ** Math.min(op.attempts - 1, 6)) * (0.5 + Math.random()));
    }
  }

  start(): void {
    this.stopping = false;
    const master = rng(this.opts.seed + this.seq);
    for (let c = 0; c < this.opts.clients; c++) {
      const r = rng(Math.floor(master() * 2 ** 31));
      this.runs.push(
        (async () => {
          while (!this.stopping) {
            const op = await this.execute(this.plan(c, r), c);
            if (op.kind === 'start' && op.outcome?.applied && op.outcome.ref) {
              const list = this.recentJobs.get(op.sub) ?? [];
              list.push(op.outcome.ref);
              if (list.length > 20) list.shift();
              this.recentJobs.set(op.sub, list);
            }
          }
        })().catch((e) => {
          this.failure ??= e as Error;
        }),
      );
    }
    // GPU workers: claim, then complete (most), fail, or walk away (the lease sweep fails it).
    this.cast.workers.forEach((w, k) => {
      const r = rng(Math.floor(master() * 2 ** 31));
      const op = (kind: Kind, jobId?: string): SoakOp => ({ kind, sub: w, role: Role.WORKER, account: '', amount: 0, attempts: 0, jobId });
      this.runs.push(
        (async () => {
          while (!this.stopping) {
            const claimed = await this.execute(op('claim'), k);
            const job = claimed.outcome?.applied ? claimed.outcome.ref : undefined;
            if (!job) {
              await sleep(25);
              continue;
            }
            const x = r();
            if ((claimed.outcome as { cancelRequested?: boolean }).cancelRequested) await this.execute(op('ack-cancel', job), k);
            else if (x < 0.86) {
              const done = await this.execute(op('complete', job), k);
              if (done.outcome && !done.outcome.applied) await this.execute(op('ack-cancel', job), k);
            } else if (x < 0.97) await this.execute(op('fail', job), k);
          }
        })().catch((e) => {
          this.failure ??= e as Error;
        }),
      );
    });
  }

  /** Stops the clients after their current operation and waits for them. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.runs);
    this.runs = [];
    if (this.failure) throw this.failure;
  }

  /** This round's operations, handed over for reconciliation (the next round starts empty). */
  takeRound(): SoakOp[] {
    const ops = this.ops;
    this.ops = [];
    return ops;
  }
}

export interface SnapEntry {
  id: string; account_id: string; kind: string; amount: number; job_id: string | null; purchase_id: string | null; idempotency_key: string | null; actor: string | null;
  job_status: string | null; job_credits: number | null; automatic: boolean | null; purchase_status: string | null;
}

/** One consistent view of the storm's holders: balances, and the ledger entries from `fromId` on. */
export interface Snapshot {
  balances: Map<string, number>;
  entries: SnapEntry[];
  ids: Set<string>;
  maxId: number;
}

/**
 * Reads balances and entries in one REPEATABLE READ snapshot. Entry ids come from a sequence,
 * so an entry can commit after one with a higher id: the next round reads from a margin below
 * this snapshot's highest id and skips the ids this snapshot already had.
 */
export async function snapshot(db: Pool, accounts: string[], fromId: number): Promise<Snapshot> {
  const c = await db.connect();
  try {
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const balances = (await c.query(`SELECT id, available FROM accounts WHERE id = ANY($1)`, [accounts])).rows as { id: string; available: number }[];
    const entries = (
      await c.query(
        `SELECT e.id::text, e.account_id, e.kind, e.amount, e.job_id, e.purchase_id, e.idempotency_key, e.actor,
                j.status AS job_status, j.credits AS job_credits, p.automatic, p.status AS purchase_status
           FROM ledger_entries e
           LEFT JOIN generation_jobs j ON j.id = e.job_id
           LEFT JOIN purchases p ON p.id = e.purchase_id
          WHERE e.id > $1 ORDER BY e.id`,
        [Math.max(0, fromId)],
      )
    ).rows as SnapEntry[];
    const [{ max }] = (await c.query(`SELECT coalesce(max(id), 0)::bigint AS max FROM ledger_entries`)).rows;
    await c.query('COMMIT');
    return { balances: new Map(balances.map((b) => [b.id, Number(b.available)])), entries, ids: new Set(entries.map((e) => e.id)), maxId: Number(max) };
  } finally {
    c.release();
  }
}

/** Waits until no auto top-up of these accounts is asked for or in flight (they settle on their own). */
export async function topUpsSettled(db: Pool, accounts: string[], ms = 60000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const { rows } = await db.query(
      `SELECT t.account_id, t.requested_at, t.purchase_id, p.status AS purchase, (SELECT string_agg(i.kind || ':' || i.status || ' lease ' || coalesce(i.lease_until::text, '-') || ' updated ' || i.updated_at::text, ', ') FROM payment_intents i WHERE i.account_id = t.account_id AND i.status = 'OPEN') AS intents
         FROM auto_top_ups t LEFT JOIN purchases p ON p.id = t.purchase_id
        WHERE t.account_id = ANY($1) AND (t.requested_at IS NOT NULL OR t.purchase_id IS NOT NULL)`,
      [accounts],
    );
    if (rows.length === 0) return;
    if (Date.now() > until) throw new Error(`${rows.length} auto top-ups still asked for or in flight after ${ms / 1000} s: ${JSON.stringify(rows)}`);
    await sleep(100);
  }
}

/**
 * A round's operations against the ledger between two snapshots: every applied start,
 * adjustment and purchase has exactly one entry, on its holder, of the answered amount; a
 * refused one left none; every other new entry is a refund of one of the storm's failed or
 * canceled jobs (at most its debit) or the grant of a completed automatic purchase; each
 * balance is its previous one plus all that.
 */
export function reconcileRound(ops: SoakOp[], prev: Snapshot, cur: Snapshot): { problems: string[]; entries: number; refunds: number; autoGrants: number } {
  const problems: string[] = [];
  const unanswered = ops.filter((o) => !o.outcome).length;
  if (unanswered) problems.push(`${unanswered} operations never answered`);
  const entries = cur.entries.filter((e) => !prev.ids.has(e.id));
  const debits = new Map<string, SnapEntry[]>();
  const grants = new Map<string, SnapEntry[]>();
  const adjustments = new Map<string, SnapEntry[]>();
  const add = (m: Map<string, SnapEntry[]>, k: string | null, e: SnapEntry) => {
    if (k === null) return;
    const l = m.get(k) ?? [];
    l.push(e);
    m.set(k, l);
  };
  for (const e of entries) {
    if (e.kind === 'DEBIT') add(debits, e.job_id, e);
    else if (e.kind === 'GRANT') add(grants, e.purchase_id, e);
    else if (e.kind === 'ADJUSTMENT' && e.actor === ADMIN) add(adjustments, e.idempotency_key, e);
  }
  const used = new Set<string>();
  const expected = new Map(prev.balances);
  const credit = (account: string, n: number) => expected.set(account, (expected.get(account) ?? 0) + n);
  for (const o of ops) {
    if (!o.outcome || !['start', 'member-start', 'adjust', 'purchase'].includes(o.kind)) continue;
    const found = o.kind === 'adjust' ? adjustments.get(o.key!) ?? [] : o.outcome.applied ? (o.kind === 'purchase' ? grants : debits).get(o.outcome.ref!) ?? [] : [];
    if (!o.outcome.applied) {
      if (found.length) problems.push(`refused ${o.kind} ${o.key}: ${found.length} ledger entries`);
      continue;
    }
    if (found.length !== 1) problems.push(`${o.kind} ${o.key} (${o.outcome.ref}): ${found.length} ledger entries (expected exactly 1)`);
    const e = found[0];
    if (!e) continue;
    used.add(e.id);
    credit(o.account, o.outcome.delta);
    if (e.account_id !== o.account) problems.push(`${o.kind} ${o.key}: entry on ${e.account_id}, expected ${o.account}`);
    if (e.amount !== o.outcome.delta) problems.push(`${o.kind} ${o.key}: entry amount ${e.amount}, answered ${o.outcome.delta}`);
    if (o.kind === 'adjust' && e.id !== String(o.outcome.ref)) problems.push(`adjust ${o.key}: answered entry ${o.outcome.ref}, ledger has ${e.id}`);
  }
  let refunds = 0;
  let autoGrants = 0;
  for (const e of entries) {
    if (used.has(e.id)) continue;
    if (e.kind === 'REFUND' && e.job_id && ['FAILED', 'CANCELED'].includes(e.job_status ?? '') && e.amount > 0 && e.amount <= (e.job_credits ?? 0)) {
      refunds++;
      credit(e.account_id, e.amount);
    } else if (e.kind === 'GRANT' && e.automatic && e.purchase_status === 'COMPLETED' && e.amount > 0) {
      autoGrants++;
      credit(e.account_id, e.amount);
    } else if (!prev.balances.has(e.account_id)) {
      problems.push(`entry ${e.id} on ${e.account_id}, an account outside the storm`);
    } else {
      problems.push(`unexplained entry ${e.id}: ${e.kind} ${e.amount} on ${e.account_id} (key ${e.idempotency_key}, job ${e.job_id} ${e.job_status}, purchase ${e.purchase_id})`);
    }
  }
  for (const [id, available] of cur.balances) if (available !== expected.get(id)) problems.push(`account ${id}: balance ${available}, its previous balance and new entries give ${expected.get(id)}`);
  return { problems: problems.slice(0, 40), entries: entries.length, refunds, autoGrants };
}
