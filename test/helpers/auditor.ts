/**
 * An auditor that watches the ledger DURING a test, on its own connection: every `everyMs` it
 * checks every invariant (ledgerViolationsOn, one snapshot) and watches immutability — it
 * remembers each ledger entry's and lot movement's row hash (md5 of the whole row) and reports
 * any that later changes or disappears. stop() runs a final pass and returns every violation
 * seen, each once.
 *
 * New row versions are found without re-reading the whole ledger: a pass reads only rows whose
 * inserting transaction (xmin) is not older than the oldest transaction still running at the
 * previous pass (its snapshot xmin). Any insert or UPDATE since then has such an xmin; a
 * DELETE or TRUNCATE shows as a row count below what was seen, and the full key list then
 * names what went missing.
 *
 * A pass that fails because the database went away (a restart test) is not a violation: the
 * auditor reconnects and goes on. stop() insists on one final pass (retrying up to 20 s).
 */
import { Client, type Pool } from 'pg';
import { ledgerViolationsOn } from './invariants';

interface Watched {
  table: string;
  /** SQL for the row key, over alias `r`. */
  key: string;
  what: string;
}

const WATCHED: Watched[] = [
  { table: 'ledger_entries', key: `r.id::text`, what: 'ledger entry' },
  { table: 'ledger_lot_movements', key: `r.entry_id::text || '/' || r.lot_id::text`, what: 'lot movement (entry/lot)' },
];

/** Errors of a connection that went away (or could not be made), not of a check. */
function isConnectionError(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  if (typeof code !== 'string') return true; // socket errors: ECONNREFUSED, "Connection terminated", …
  return /^(08|53|57)/.test(code) || /^E[A-Z]+$/.test(code);
}

/**
 * `share`: the part of the time the auditor may spend checking (0.2: it pauses four times the
 * length of its last pass, so a large ledger does not take the machine).
 */
export function startAuditor(db: Pool, everyMs = 200, share = 0.2): { stop(): Promise<string[]>; passes(): number } {
  const seen = new Set<string>();
  const hashes = WATCHED.map(() => new Map<string, string>());
  let sinceXmin = 0n; // 32-bit xid of the previous pass's snapshot xmin (0: read everything)
  let client: Client | undefined;
  let passes = 0;
  let stopped = false;
  let wake: (() => void) | undefined;

  const note = (v: string) => seen.add(v);

  async function connection(): Promise<Client> {
    if (client) return client;
    const c = new Client({ ...db.options, application_name: 'auditor-watch' } as ConstructorParameters<typeof Client>[0]);
    c.on('error', () => undefined); // a terminated idle connection is replaced at the next pass
    try {
      await c.connect();
    } catch (e) {
      await c.end().catch(() => undefined);
      throw e;
    }
    client = c;
    return c;
  }

  async function watchImmutability(c: Client): Promise<void> {
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    try {
      const snap = await c.query<{ xmin: string; xmax: string }>(
        `SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin, pg_snapshot_xmax(pg_current_snapshot())::text AS xmax`,
      );
      const xmin32 = BigInt(snap.rows[0].xmin) % 2n ** 32n;
      const xmax32 = BigInt(snap.rows[0].xmax) % 2n ** 32n;
      // The 32-bit xid counter wrapped since the last pass: read everything once.
      const from = sinceXmin > xmax32 ? 0n : sinceXmin;
      for (let i = 0; i < WATCHED.length; i++) {
        const w = WATCHED[i];
        const known = hashes[i];
        const fresh = await c.query<{ k: string; h: string }>(
          `SELECT ${w.key} AS k, md5(r::text) AS h FROM ${w.table} r WHERE r.xmin::text::bigint >= $1`,
          [from.toString()],
        );
        for (const { k, h } of fresh.rows) {
          const before = known.get(k);
          if (before === undefined) known.set(k, h);
          else if (before !== h) note(`immutability: ${w.what} ${k} changed after it was written`);
        }
        const { rows } = await c.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${w.table}`);
        if (Number(rows[0].n) !== known.size) {
          // Something went missing (or was missed): compare every key.
          const all = await c.query<{ k: string; h: string }>(`SELECT ${w.key} AS k, md5(r::text) AS h FROM ${w.table} r`);
          const present = new Set<string>();
          for (const { k, h } of all.rows) {
            present.add(k);
            const before = known.get(k);
            if (before === undefined) known.set(k, h);
            else if (before !== h) note(`immutability: ${w.what} ${k} changed after it was written`);
          }
          for (const k of known.keys()) if (!present.has(k)) note(`immutability: ${w.what} ${k} disappeared`);
        }
      }
      sinceXmin = xmin32;
    } finally {
      await c.query('COMMIT').catch(() => undefined);
    }
  }

  async function pass(): Promise<void> {
    const c = await connection();
    try {
      for (const v of await ledgerViolationsOn(c)) note(v);
      await watchImmutability(c);
      passes++;
    } catch (e) {
      if (client === c) client = undefined;
      await c.end().catch(() => undefined);
      throw e;
    }
  }

  async function tryPass(): Promise<boolean> {
    try {
      await pass();
      return true;
    } catch (e) {
      if (!isConnectionError(e)) note(`auditor could not check: ${(e as Error).message}`);
      return false;
    }
  }

  const loop = (async () => {
    while (!stopped) {
      const t0 = Date.now();
      await tryPass();
      if (stopped) break;
      // A pass over a large ledger takes a while: the pause after it keeps the auditor to its share of one connection.
      const pause = Math.max(everyMs, ((1 - share) / share) * (Date.now() - t0));
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, pause);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      wake = undefined;
    }
  })();

  return {
    passes: () => passes,
    async stop(): Promise<string[]> {
      stopped = true;
      wake?.();
      await loop;
      const until = Date.now() + 20_000;
      let final = await tryPass();
      while (!final && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 250));
        final = await tryPass();
      }
      await client?.end().catch(() => undefined);
      client = undefined;
      if (!final) note('auditor: the final pass could not reach the database');
      return [...seen];
    },
  };
}
