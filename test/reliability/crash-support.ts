/**
 * Support for the crash and database-restart tests: the API as a real child process that can
 * be killed and started again on the same port, clients that send keyed mutations and retry
 * every unanswered one with its key until it is answered, and a reconciliation of what the
 * clients were told against what the ledger holds.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { Pool } from 'pg';
import { Role } from '../../src/common/auth/role.enum';
import { ledgerViolations } from '../helpers/invariants';
import { startService, type ServiceProcess } from '../helpers/process';
import { TEST_JWT_SECRET, testToken } from '../helpers/test-app';

export const ADMIN = 'rel-admin';
/** An adjustment no balance in these tests can pay. */
export const IMPOSSIBLE_DEBIT = 1_000_000;

/** A small seeded generator (mulberry32): the same seed gives the same run plan. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One token per subject and role, signed once (the storms send thousands of requests). */
const tokens = new Map<string, Promise<string>>();
export function tokenFor(sub: string, role: Role = Role.USER): Promise<string> {
  const k = `${role}:${sub}`;
  if (!tokens.has(k)) tokens.set(k, testToken(sub, role));
  return tokens.get(k)!;
}

/** One HTTP GraphQL request; throws on a network failure (refused, reset, timeout). */
export async function post(base: string, query: string, variables: Record<string, unknown>, sub: string, role: Role, timeoutMs = 15000) {
  const res = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${await tokenFor(sub, role)}` },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let body: { data?: Record<string, any> | null; errors?: { message: string; extensions?: { code?: string } }[] } = {};
  try {
    body = JSON.parse(text);
  } catch {
    body = { errors: [{ message: `not JSON: ${text.slice(0, 200)}` }] };
  }
  return { status: res.status, ...body };
}

/** Status of GET `path`, or 0 when nothing answers. */
export async function probe(base: string, path: string, timeoutMs = 3000): Promise<number> {
  try {
    const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/** The API (src/main.ts) as a child process on a fixed port, which can be killed and started again. */
export class ApiProcess {
  svc?: ServiceProcess;
  starts = 0;
  readonly startMs: number[] = [];
  /** When the current process became ready (0: it is not). */
  readyAt = 0;
  /** Output of every process that ended, for diagnosis. */
  private past = '';

  constructor(readonly port: number, private readonly env: Record<string, string>, private readonly opts: { compiled?: boolean; nodeArgs?: string[] } = {}) {}

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts the process without waiting for it to be ready. */
  spawn(): ServiceProcess {
    this.readyAt = 0;
    this.svc = startService({ ...this.env, PORT: String(this.port), HOST: '127.0.0.1', JWT_SECRET: TEST_JWT_SECRET, NODE_ENV: 'test' }, this.opts);
    this.starts++;
    return this.svc;
  }

  async start(): Promise<void> {
    const t0 = Date.now();
    const svc = this.spawn();
    while ((await probe(this.base, '/readyz')) !== 200) {
      if (svc.child.exitCode !== null || svc.child.signalCode !== null) throw new Error(`the API exited while starting:\n${svc.output().slice(-4000)}`);
      if (Date.now() - t0 > 60000) throw new Error(`the API did not become ready in 60 s:\n${svc.output().slice(-4000)}`);
      await sleep(50);
    }
    this.startMs.push(Date.now() - t0);
    this.readyAt = Date.now();
  }

  alive(): boolean {
    return !!this.svc && this.svc.child.exitCode === null && this.svc.child.signalCode === null;
  }

  /** kill -9, and wait until the process is gone. */
  async kill9(): Promise<void> {
    const svc = this.svc!;
    this.readyAt = 0;
    svc.child.kill('SIGKILL');
    const { signal } = await svc.exited;
    if (signal !== 'SIGKILL') throw new Error(`expected the API to die of SIGKILL, it ended with ${signal}`);
    this.past += svc.output();
  }

  async stop(): Promise<void> {
    const svc = this.svc;
    if (!svc || !this.alive()) return;
    svc.child.kill('SIGTERM');
    const timer = setTimeout(() => svc.child.kill('SIGKILL'), 15000);
    await svc.exited;
    clearTimeout(timer);
  }

  output(): string {
    return this.past + (this.svc?.output() ?? '');
  }
}

export type OpKind = 'start' | 'adjust' | 'purchase';

export interface Op {
  client: number;
  kind: OpKind;
  account: string;
  key: string;
  /** adjust: signed amount; start: image count. */
  amount: number;
  attempts: number;
  /** Why earlier attempts went unanswered (network error, HTTP status, GraphQL error code). */
  failures: string[];
  sentAt?: number;
  /** When the first attempt went unanswered. */
  firstFailureAt?: number;
  answeredAt?: number;
  outcome?: { applied: true; delta: number; ref: string } | { applied: false; code: string };
}

const START = `mutation Start($input: StartGenerationInput!) {
  startGeneration(input: $input) { job { id credits status } balance { available } userErrors { code message } } }`;
const ADJUST = `mutation Adjust($input: AdjustCreditsInput!) {
  adjustCredits(input: $input) { entry { id amount } balance { available } userErrors { code message } } }`;
const PURCHASE = `mutation Buy($input: PurchaseCreditPackInput!) {
  purchaseCreditPack(input: $input) { purchase { id status credits } balance { available } userErrors { code message } } }`;

/** Sends `op` once. Returns its outcome, or a reason it went unanswered. */
export async function attempt(base: string, op: Op): Promise<Op['outcome'] | string> {
  let res;
  try {
    if (op.kind === 'start') {
      res = await post(base, START, {
        input: { settings: { type: 'IMAGE', imageQuality: 'STANDARD', count: op.amount }, prompt: `reliability ${op.key}`, idempotencyKey: op.key },
      }, op.account, Role.USER);
    } else if (op.kind === 'adjust') {
      res = await post(base, ADJUST, { input: { accountId: op.account, amount: op.amount, reason: `reliability ${op.key}`, idempotencyKey: op.key } }, ADMIN, Role.ADMIN);
    } else {
      res = await post(base, PURCHASE, { input: { packCode: 'STARTER', idempotencyKey: op.key } }, op.account, Role.USER);
    }
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    return `network: ${cause?.code ?? cause?.message ?? (e as Error).name}`;
  }
  if (res.status !== 200) return `http ${res.status}`;
  if (res.errors?.length) return `graphql: ${res.errors[0].extensions?.code ?? res.errors[0].message}`;
  const payload = res.data && Object.values(res.data)[0];
  if (!payload) return 'graphql: no data';
  if (payload.userErrors?.length) return { applied: false, code: payload.userErrors[0].code };
  if (op.kind === 'start' && payload.job) return { applied: true, delta: -payload.job.credits, ref: payload.job.id };
  if (op.kind === 'adjust' && payload.entry) return { applied: true, delta: payload.entry.amount, ref: payload.entry.id };
  if (op.kind === 'purchase' && payload.purchase?.status === 'COMPLETED') return { applied: true, delta: payload.purchase.credits, ref: payload.purchase.id };
  return { applied: false, code: `unexpected payload ${JSON.stringify(payload)}` };
}

/**
 * Clients sending keyed mutations. Each client sends one operation at a time and retries an
 * unanswered one with the same key (and the same input) until it is answered.
 */
export class KeyedLoad {
  readonly ops: Op[] = [];
  private stopping = false;
  private runs: Promise<void>[] = [];
  /** Operations answered so far. */
  answered = 0;
  /** Answers that were GraphQL errors (retried: the change was not acknowledged). */
  errorAnswers = 0;
  /** The first client that gave up (an operation unanswered for giveUpMs). */
  failure?: Error;
  private seq = 0;

  constructor(
    private readonly base: string,
    private readonly opts: {
      clients: number;
      accounts: string[];
      seed: number;
      tag: string;
      thinkMs?: number;
      /** An operation unanswered this long (counted while the API is up, see upSince) fails the run. */
      giveUpMs?: number;
      /** Since when the API has been up (0: it is down); a crash and restart do not count against giveUpMs. */
      upSince?: () => number;
    },
  ) {}

  /** The next operation of `client` (seeded): mostly starts, some adjustments, a few purchases. */
  private plan(client: number, r: () => number): Op {
    const account = this.opts.accounts[Math.floor(r() * this.opts.accounts.length)];
    const x = r();
    const kind: OpKind = x < 0.6 ? 'start' : x < 0.9 ? 'adjust' : 'purchase';
    const y = r();
    // One adjustment in ten takes more than any balance holds: always refused (INSUFFICIENT_CREDITS).
    const amount = kind === 'start' ? 1 + Math.floor(r() * 2) : kind !== 'adjust' ? 0 : y < 0.1 ? -IMPOSSIBLE_DEBIT : y < 0.35 ? -1 - Math.floor(r() * 3) : 1 + Math.floor(r() * 5);
    return { client, kind, account, key: `${this.opts.tag}-c${client}-${this.seq++}`, amount, attempts: 0, failures: [] };
  }

  /** Sends `op` until it is answered; records it. */
  async execute(op: Op): Promise<Op> {
    if (!this.ops.includes(op)) this.ops.push(op);
    op.sentAt = Date.now();
    const giveUpMs = this.opts.giveUpMs ?? 60000;
    for (;;) {
      op.attempts++;
      const out = await attempt(this.base, op);
      if (typeof out !== 'string') {
        op.outcome = out;
        op.answeredAt = Date.now();
        this.answered++;
        return op;
      }
      if (out.startsWith('graphql:')) this.errorAnswers++;
      op.failures.push(out);
      op.firstFailureAt ??= Date.now();
      const up = this.opts.upSince ? this.opts.upSince() : op.sentAt;
      if (up > 0 && Date.now() - Math.max(op.sentAt, up) > giveUpMs) {
        throw new Error(`operation ${op.key} (${op.kind} ${op.amount} on ${op.account}) unanswered after ${op.attempts} attempts: ${op.failures.slice(-3).join('; ')}`);
      }
      await sleep(50 + Math.random() * 150);
    }
  }

  /** Starts the clients: `perClient` operations each, or until stop() when it is omitted. */
  start(perClient?: number): void {
    const master = rng(this.opts.seed);
    for (let c = 0; c < this.opts.clients; c++) {
      const r = rng(Math.floor(master() * 2 ** 31));
      this.runs.push(
        (async () => {
          for (let i = 0; perClient === undefined ? !this.stopping : i < perClient; i++) {
            await this.execute(this.plan(c, r));
            if (this.opts.thinkMs) await sleep(this.opts.thinkMs * r());
          }
        })().catch((e) => {
          this.failure ??= e as Error;
        }),
      );
    }
  }

  /** Waits until `n` operations were answered; throws as soon as a client gave up. */
  async untilAnswered(n: number): Promise<void> {
    while (this.answered < n) {
      if (this.failure) throw this.failure;
      await sleep(2);
    }
  }

  /** Requests currently waiting for an answer. */
  inFlight(): number {
    return this.ops.filter((o) => !o.outcome).length;
  }

  /** Asks the clients to stop after their current operation (answered) and waits for them. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.finished();
  }

  async finished(): Promise<void> {
    await Promise.all(this.runs);
    if (this.failure) throw this.failure;
  }
}

export interface Baseline {
  maxEntryId: number;
  balances: Map<string, number>;
  /** Jobs and purchases of these accounts that already existed. */
  jobs: Set<string>;
  purchases: Set<string>;
}

export async function baseline(db: Pool, accounts: string[]): Promise<Baseline> {
  const [{ max }] = (await db.query(`SELECT coalesce(max(id), 0)::bigint AS max FROM ledger_entries`)).rows;
  const rows = (await db.query(`SELECT id, available FROM accounts WHERE id = ANY($1)`, [accounts])).rows as { id: string; available: number }[];
  if (rows.length !== accounts.length) throw new Error(`expected ${accounts.length} accounts, found ${rows.length}`);
  const jobs = (await db.query(`SELECT id FROM generation_jobs WHERE account_id = ANY($1)`, [accounts])).rows.map((r) => r.id as string);
  const purchases = (await db.query(`SELECT id FROM purchases WHERE account_id = ANY($1)`, [accounts])).rows.map((r) => r.id as string);
  return { maxEntryId: Number(max), balances: new Map(rows.map((r) => [r.id, Number(r.available)])), jobs: new Set(jobs), purchases: new Set(purchases) };
}

/** An entry the test expects besides the operations' own (e.g. a refund by the lease sweep). */
export interface ExtraEntry {
  account: string;
  kind: string;
  amount: number;
  jobId: string;
}

export interface Reconciliation {
  problems: string[];
  applied: number;
  refused: number;
  /** Operations that needed more than one attempt. */
  retried: number;
  /** Retried operations whose change was committed by an attempt whose answer was lost. */
  replayedAfterLoss: number;
  entries: number;
}

/**
 * What the clients were told against what the database holds, since `base`:
 * every applied operation has exactly one ledger entry (a start: one DEBIT of its job; an
 * adjustment: one ADJUSTMENT under its key; a purchase: one GRANT of its purchase); no other
 * entry exists; a refused operation left nothing; one job per applied start and one purchase
 * per applied purchase; each balance = its baseline + the applied changes; the ledger
 * invariants hold.
 */
export async function reconcile(db: Pool, ops: Op[], base: Baseline, extra: ExtraEntry[] = []): Promise<Reconciliation> {
  const problems: string[] = [];
  const unanswered = ops.filter((o) => !o.outcome);
  if (unanswered.length) problems.push(`${unanswered.length} operations never answered: ${unanswered.slice(0, 5).map((o) => o.key).join(', ')}`);
  const odd = ops.filter((o) => o.outcome && !o.outcome.applied && o.outcome.code !== 'INSUFFICIENT_CREDITS');
  for (const o of odd.slice(0, 10)) problems.push(`operation ${o.key} answered ${(o.outcome as { code: string }).code}`);

  const entries = (
    await db.query(
      `SELECT id::bigint AS id, account_id, kind, amount, job_id, purchase_id, idempotency_key, actor, created_at
         FROM ledger_entries WHERE id > $1 ORDER BY id`,
      [base.maxEntryId],
    )
  ).rows as { id: string; account_id: string; kind: string; amount: number; job_id: string | null; purchase_id: string | null; idempotency_key: string | null; actor: string | null; created_at: Date }[];
  const used = new Set<string>();
  const take = (what: string, pred: (e: (typeof entries)[number]) => boolean) => {
    const found = entries.filter(pred);
    if (found.length !== 1) problems.push(`${what}: ${found.length} ledger entries (expected exactly 1)`);
    for (const e of found) used.add(e.id);
    return found[0];
  };
  let replayedAfterLoss = 0;
  const expected = new Map(base.balances);
  for (const o of ops) {
    if (!o.outcome) continue;
    if (!o.outcome.applied) {
      if (o.kind === 'adjust') {
        const n = entries.filter((e) => e.idempotency_key === o.key && e.actor === ADMIN).length;
        if (n) problems.push(`refused ${o.key}: ${n} ledger entries`);
      }
      continue;
    }
    const { ref, delta } = o.outcome;
    expected.set(o.account, (expected.get(o.account) ?? 0) + delta);
    const e =
      o.kind === 'start'
        ? take(`start ${o.key} (job ${ref})`, (e) => e.kind === 'DEBIT' && e.job_id === ref)
        : o.kind === 'adjust'
          ? take(`adjust ${o.key}`, (e) => e.kind === 'ADJUSTMENT' && e.idempotency_key === o.key && e.actor === ADMIN)
          : take(`purchase ${o.key} (${ref})`, (e) => e.kind === 'GRANT' && e.purchase_id === ref);
    if (!e) continue;
    if (e.account_id !== o.account) problems.push(`${o.key}: entry on ${e.account_id}, expected ${o.account}`);
    if (e.amount !== delta) problems.push(`${o.key}: entry amount ${e.amount}, answered ${delta}`);
    if (o.kind === 'adjust' && String(e.id) !== String(ref)) problems.push(`${o.key}: answered entry ${ref}, ledger has ${e.id}`);
    if (o.attempts > 1 && o.firstFailureAt !== undefined && new Date(e.created_at).getTime() <= o.firstFailureAt) replayedAfterLoss++;
  }
  for (const x of extra) {
    expected.set(x.account, (expected.get(x.account) ?? 0) + x.amount);
    const e = take(`${x.kind} of job ${x.jobId}`, (e) => e.kind === x.kind && e.job_id === x.jobId);
    if (e && e.amount !== x.amount) problems.push(`${x.kind} of job ${x.jobId}: amount ${e.amount}, expected ${x.amount}`);
  }
  const stray = entries.filter((e) => !used.has(e.id));
  for (const e of stray.slice(0, 10)) problems.push(`unexplained entry ${e.id}: ${e.kind} ${e.amount} on ${e.account_id} (key ${e.idempotency_key}, job ${e.job_id}, purchase ${e.purchase_id})`);
  if (stray.length > 10) problems.push(`… and ${stray.length - 10} more unexplained entries`);

  const accounts = [...base.balances.keys()];
  const balances = (await db.query(`SELECT id, available FROM accounts WHERE id = ANY($1)`, [accounts])).rows as { id: string; available: number }[];
  for (const b of balances) {
    if (Number(b.available) !== expected.get(b.id)) problems.push(`account ${b.id}: balance ${b.available}, applied changes give ${expected.get(b.id)}`);
  }
  const appliedStarts = ops.filter((o) => o.kind === 'start' && o.outcome?.applied).map((o) => (o.outcome as { ref: string }).ref);
  const jobs = (await db.query(`SELECT id FROM generation_jobs WHERE account_id = ANY($1)`, [accounts])).rows.map((r) => r.id as string).filter((j) => !base.jobs.has(j));
  const jobSet = new Set(appliedStarts);
  const strayJobs = jobs.filter((j) => !jobSet.has(j));
  if (jobs.length !== appliedStarts.length || strayJobs.length) problems.push(`${jobs.length} jobs for ${appliedStarts.length} applied starts (${strayJobs.length} not answered to anyone)`);
  const appliedBuys = ops.filter((o) => o.kind === 'purchase' && o.outcome?.applied).length;
  const purchases = (await db.query(`SELECT status, count(*)::int AS n FROM purchases WHERE account_id = ANY($1) AND NOT (id = ANY($2::uuid[])) GROUP BY status`, [accounts, [...base.purchases]])).rows as { status: string; n: number }[];
  const completed = purchases.find((p) => p.status === 'COMPLETED')?.n ?? 0;
  const others = purchases.filter((p) => p.status !== 'COMPLETED');
  if (completed !== appliedBuys || others.length) problems.push(`purchases ${JSON.stringify(purchases)} for ${appliedBuys} applied`);
  problems.push(...(await ledgerViolations(db)));

  return {
    problems,
    applied: ops.filter((o) => o.outcome?.applied).length,
    refused: ops.filter((o) => o.outcome && !o.outcome.applied).length,
    retried: ops.filter((o) => o.attempts > 1).length,
    replayedAfterLoss,
    entries: entries.length,
  };
}

/** Opens the accounts (first request of each subject) and gives each `credits` more, before the baseline. */
export async function prepareAccounts(base: string, accounts: string[], credits: number): Promise<void> {
  await post(base, '{ me { id } }', {}, ADMIN, Role.ADMIN);
  for (const a of accounts) {
    const me = await post(base, '{ me { id balance { available } } }', {}, a, Role.USER);
    if (me.data?.me?.id !== a) throw new Error(`could not open ${a}: ${JSON.stringify(me)}`);
    const adj = await post(base, 'mutation($a: ID!, $n: Int!) { adjustCredits(input: { accountId: $a, amount: $n, reason: "reliability float" }) { entry { id } } }', { a, n: credits }, ADMIN, Role.ADMIN);
    if (!adj.data?.adjustCredits?.entry) throw new Error(`could not credit ${a}: ${JSON.stringify(adj)}`);
  }
}

/** A pool for checks from the test itself; errors of idle connections (the database went away) are expected. */
export function auditPool(url: string): Pool {
  const pool = new Pool({ connectionString: url, max: 2, application_name: 'reliability-auditor' });
  pool.on('error', () => undefined);
  return pool;
}

/** A PostgreSQL of the test's own (test/reliability/postgres-restart-server.ts), stopped and started on one port and data folder. */
export class PgServer {
  private child?: ChildProcess;
  private out = '';
  url = '';
  starts = 0;

  constructor(readonly dataDir: string, readonly port: number) {}

  async start(): Promise<string> {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('JEST') && k !== 'NODE_OPTIONS') env[k] = v;
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'test/reliability/postgres-restart-server.ts', this.dataDir, String(this.port)], {
      cwd: path.resolve(__dirname, '..', '..'),
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const t0 = Date.now();
    while (!/READY (\S+)/.test(out)) {
      if (child.exitCode !== null) throw new Error(`PostgreSQL did not start:\n${out}`);
      if (Date.now() - t0 > 60000) throw new Error(`PostgreSQL did not start in 60 s:\n${out}`);
      await sleep(25);
    }
    this.out += out;
    this.url = /READY (\S+)/.exec(out)![1];
    this.starts++;
    return this.url;
  }

  /** `fast`: sessions terminated, checkpoint; `immediate`: no checkpoint, crash recovery at the next start. */
  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(mode === 'fast' ? 'SIGTERM' : 'SIGUSR2');
    await exited;
    this.child = undefined;
  }

  output(): string {
    return this.out;
  }
}

/** Why attempts went unanswered, most frequent first: "network: ECONNREFUSED ×12, …". */
export function failureSummary(ops: Op[]): string {
  const counts = new Map<string, number>();
  for (const o of ops) for (const f of o.failures) counts.set(f, (counts.get(f) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1]).map(([f, n]) => `${f} ×${n}`).join(', ') || 'none';
}
