/**
 * The soak's hostile stream: generated inputs for every argument of every field (walked from
 * schema/schema.graphql) sent to a production-configured server, one at a time, as the
 * intended caller and as others. Each answer must be clean (hostile-rules.ts), and a refusal
 * must leave the money state (ledger, balances, lots, jobs, purchases) as it was.
 */
import fc from 'fast-check';
import { createClient, type Client as WsClient } from 'graphql-ws';
import WebSocket from 'ws';
import { Role } from '../../src/common/auth/role.enum';
import { findingsOf, intendedRole, MONEY_STATE_SQL, refusedIn, tableNamePattern, type Answer } from '../reliability/hostile-rules';
import { argumentSites, documentFor, hostileValue, leafPaths, loadSchema, setAt, stringsIn, validValue, type ArgSite } from '../reliability/schema-walk';
import type { TestApp } from '../helpers/test-app';

type As = 'user' | 'other' | 'admin' | 'worker' | 'none' | 'bad-token';
const SUBS = {
  user: { sub: 'soak-hostile-a', role: Role.USER },
  other: { sub: 'soak-hostile-b', role: Role.USER },
  admin: { sub: 'soak-hostile-admin', role: Role.ADMIN },
  worker: { sub: 'soak-hostile-worker', role: Role.WORKER },
} as const;

export class HostileStream {
  sent = 0;
  refused = 0;
  readonly findings: string[] = [];
  private readonly sites: ArgSite[];
  private tables = /$^/;
  private readonly ids: string[] = [];
  private ws = new Map<As, WsClient>();
  private next = 0;

  constructor(private readonly app: TestApp, private readonly seed: number) {
    this.sites = argumentSites(loadSchema()).filter((s) => s.via);
  }

  /** Objects of both users, so real own and foreign ids are in the mix. */
  async prepare(): Promise<void> {
    const { rows } = await this.app.audit.query(`SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE '%\\_%'`);
    this.tables = tableNamePattern(rows.map((r) => r.tablename));
    // Every caller's own account opened first (as the hostile-input test does): an admin's or a
    // worker's opens at its first call that reads its own account, refused or not.
    for (const s of Object.values(SUBS)) await this.app.raw(`{ quote(settings: { type: IMAGE, imageQuality: STANDARD }) { id } }`, undefined, s);
    for (const as of ['user', 'other'] as const) {
      const s = SUBS[as];
      const job = await this.app.raw<{ startGeneration: { job: { id: string } } }>(
        `mutation { startGeneration(input: { settings: { type: IMAGE, imageQuality: STANDARD }, prompt: "fixture" }) { job { id } } }`, undefined, s);
      const buy = await this.app.raw<{ purchaseCreditPack: { purchase: { id: string } } }>(`mutation { purchaseCreditPack(input: { packCode: "STARTER" }) { purchase { id } } }`, undefined, s);
      const q = await this.app.raw<{ quote: { id: string } }>(`{ quote(settings: { type: IMAGE, imageQuality: STANDARD }) { id } }`, undefined, s);
      const ids = [job.data?.startGeneration.job.id, buy.data?.purchaseCreditPack.purchase.id, q.data?.quote.id];
      if (ids.some((x) => !x)) throw new Error(`hostile fixtures failed: ${JSON.stringify([job, buy, q])}`);
      this.ids.push(...(ids as string[]), s.sub);
    }
  }

  /** Waits until no automatic top-up is asked for or in flight (they land after the commit that asked, on their own). */
  private async topUpsSettled(): Promise<void> {
    for (const until = Date.now() + 10_000; Date.now() < until; ) {
      const { rows } = await this.app.audit.query(`SELECT count(*)::int AS n FROM auto_top_ups WHERE requested_at IS NOT NULL OR purchase_id IS NOT NULL`);
      if (rows[0].n === 0) return;
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** The money state once it stopped moving (two reads 10 ms apart agree): nothing of an earlier input is still landing. */
  private async settledMoney(): Promise<string> {
    let last = await this.money();
    for (let i = 0; i < 100; i++) {
      await new Promise((r) => setTimeout(r, 10));
      const now = await this.money();
      if (now === last) return now;
      last = now;
    }
    return last;
  }

  private async money(): Promise<string> {
    await this.topUpsSettled();
    const { rows } = await this.app.audit.query(MONEY_STATE_SQL);
    return rows[0].d;
  }

  private async headers(as: As): Promise<Record<string, string>> {
    const h: Record<string, string> = { 'content-type': 'application/json' };
    if (as === 'bad-token') h.authorization = 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.bad';
    else if (as !== 'none') h.authorization = `Bearer ${await this.app.token(SUBS[as].sub, SUBS[as].role)}`;
    return h;
  }

  private async http(query: string, variables: unknown, as: As): Promise<Answer & { refused: boolean }> {
    const res = await fetch(this.app.url, { method: 'POST', headers: await this.headers(as), body: JSON.stringify({ query, variables }) });
    const text = await res.text();
    let body: Answer['body'];
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { transport: 'http', status: res.status, text, body, refused: !body || refusedIn(body.data, body.errors) };
  }

  private wsClient(as: As): WsClient {
    let c = this.ws.get(as);
    if (!c) {
      c = createClient({
        url: this.app.server.wsUrl,
        webSocketImpl: WebSocket,
        lazy: true,
        retryAttempts: 0,
        connectionParams: async () => (as === 'none' ? {} : as === 'bad-token' ? { authorization: 'Bearer nope' } : { authorization: `Bearer ${await this.app.token(SUBS[as].sub, SUBS[as].role)}` }),
        on: { closed: () => this.ws.delete(as) },
      });
      this.ws.set(as, c);
    }
    return c;
  }

  /** A subscription: its first error or result, or accepted when still open after 100 ms. */
  private subscribe(query: string, variables: Record<string, unknown>, as: As): Promise<Answer & { refused: boolean }> {
    return new Promise((resolve) => {
      let done = false;
      const finish = (a: Answer & { refused: boolean }) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        stop();
        resolve(a);
      };
      const stop = this.wsClient(as).subscribe(
        { query, variables },
        {
          next: (v) => finish({ transport: 'ws', status: 0, text: JSON.stringify(v), body: v as Answer['body'], refused: refusedIn(v.data, v.errors as unknown[]) }),
          error: (e) => {
            const closeCode = (e as { code?: number })?.code;
            const errors = Array.isArray(e) ? (e as NonNullable<Answer['body']>['errors']) : undefined;
            finish({ transport: 'ws', status: 0, text: JSON.stringify(Array.isArray(e) ? e : { code: closeCode, reason: (e as { reason?: string })?.reason ?? String(e) }), body: errors ? { errors } : undefined, closeCode, refused: true });
          },
          complete: () => finish({ transport: 'ws', status: 0, text: '[]', refused: false }),
        },
      );
      const timer = setTimeout(() => finish({ transport: 'ws', status: 0, text: '[]', refused: false }), 100);
    });
  }

  /** The next generated input (seeded by the stream's seed and its number). */
  private generate(): { site: ArgSite; vars: Record<string, unknown>; as: As } {
    const n = this.next++;
    const site = this.sites[n % this.sites.length];
    const seed = this.seed + n;
    const ctx = { ids: this.ids };
    const intended = intendedRole(site, site.id);
    const [as] = fc.sample(fc.oneof({ weight: 7, arbitrary: fc.constant(intended) }, { weight: 3, arbitrary: fc.constantFrom<As>('none', 'bad-token', 'other', 'admin', 'worker', 'user') }), { seed, numRuns: 1 });
    const base = fc.sample(fc.record(Object.fromEntries(site.args.map((a) => [a.name, validValue(a.type, ctx)]))), { seed: seed + 1, numRuns: 1 })[0] as Record<string, unknown>;
    const leaves = leafPaths(site.args);
    if (n % 3 !== 2 && leaves.length) {
      // One leaf hostile, the rest type-correct.
      const leaf = leaves[Math.floor(n / this.sites.length) % leaves.length];
      const [bad] = fc.sample(hostileValue(leaf.type, ctx), { seed: seed + 2, numRuns: 1 });
      return { site, vars: setAt(base, leaf.path, bad), as };
    }
    const whole = fc.record(Object.fromEntries(site.args.map((a) => [a.name, fc.oneof(validValue(a.type, ctx), hostileValue(a.type, ctx))])), { requiredKeys: [] });
    return { site, vars: fc.sample(whole, { seed: seed + 3, numRuns: 1 })[0] as Record<string, unknown>, as };
  }

  /** Inputs in flight, and the mutation (if any) that has the server to itself. */
  private reading = 0;
  private writing?: Promise<void>;
  private idle?: () => void;

  /**
   * Sends one generated input and checks its answer, and on a refusal that no money moved.
   * Several run at once, except a mutation: it waits until nothing else is in flight and holds
   * the others back, so the state before and after it is its own.
   */
  async one(): Promise<void> {
    const input = this.generate();
    while (this.writing) await this.writing;
    if (input.site.operation !== 'mutation') {
      this.reading++;
      try {
        return await this.send(input);
      } finally {
        if (--this.reading === 0) this.idle?.();
      }
    }
    let done!: () => void;
    this.writing = new Promise((r) => (done = r));
    try {
      while (this.reading > 0) await new Promise<void>((r) => (this.idle = r));
      await this.send(input);
    } finally {
      this.writing = undefined;
      done();
    }
  }

  private async send({ site, vars, as }: { site: ArgSite; vars: Record<string, unknown>; as: As }): Promise<void> {
    const query = documentFor(site);
    // Only a mutation can move money: the state is compared around mutations.
    const before = site.operation === 'mutation' ? await this.settledMoney() : undefined;
    const a = site.operation === 'subscription' ? await this.subscribe(query, vars, as) : await this.http(query, vars, as);
    this.sent++;
    const why = findingsOf(a, stringsIn([query, vars]), this.tables, Buffer.byteLength(JSON.stringify({ query, variables: vars })));
    if (a.refused) {
      this.refused++;
      const after = before !== undefined ? await this.money() : undefined;
      if (after !== before) why.push(`a refusal changed the money state (${before} → ${after})`);
    }
    if (why.length) this.findings.push(`${site.id} as ${as} (input ${this.next - 1}, seed ${this.seed}): ${why.join('; ')} :: ${a.text.slice(0, 200)}`);
  }

  async close(): Promise<void> {
    await Promise.all([...this.ws.values()].map((c) => c.dispose()));
  }
}
