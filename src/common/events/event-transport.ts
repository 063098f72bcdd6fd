/**
 * How live events travel from the writing transaction to every instance, chosen once per
 * database at start, as its owner:
 * - `logical`: the database function event_send writes a transactional logical decoding message
 *   (pg_logical_emit_message): no lock at commit; each instance streams them, in commit order,
 *   from a temporary slot of its own over a replication connection (START_REPLICATION, pgoutput,
 *   the publication `credits_events` of no tables).
 *   Needs `wal_level = logical`, an owner with REPLICATION (or superuser) and the publication.
 *   The embedded database is set up so.
 * - `notify`: pg_notify in the transaction, LISTEN on each instance. PostgreSQL takes one
 *   server-wide lock for every notifying commit (docs/PERFORMANCE.md, "Events and commits").
 * A logical message can reach the reader a moment before its transaction is visible to other
 * sessions (the commit record is written and streamed before the transaction leaves the running
 * set), so the reader holds each transaction's events until a new snapshot no longer counts it
 * as running (event-bus.ts, VisibleCommits) — without that, a payload reading the row it
 * announces missed it once in the tenant-isolation suite. EVENTS_TRANSPORT=notify is the
 * default: on the 2-core machine measured, the API is the limit and `logical` gives no more
 * starts per second and a higher push p99 (docs/PERFORMANCE.md); it pays where PostgreSQL's
 * commits are the limit. `auto` takes `logical` where the database allows it. The choice is
 * the database's (`ALTER DATABASE … SET credits.events`), so every connection's writers — the
 * service's, an operator's psql — send the same way; all instances of one database must read the
 * same way too (a rolling switch loses the live events of the switch, not the ledger).
 */
import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';

export type EventTransport = 'notify' | 'logical';
export type EventTransportSetting = EventTransport | 'auto';

export async function chooseEventTransport(owner: DataSource, wanted: EventTransportSetting, log: Logger): Promise<EventTransport> {
  const [r] = (await owner.query(
    `SELECT current_setting('wal_level') AS wal_level, current_database() AS db,
            (SELECT rolsuper OR rolreplication FROM pg_roles WHERE rolname = current_user) AS may,
            EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'credits_events') AS publication`,
  )) as { wal_level: string; db: string; may: boolean; publication: boolean }[];
  const missing = [
    r.wal_level !== 'logical' && `wal_level is ${r.wal_level}, not logical`,
    !r.may && 'the owner role has neither REPLICATION nor superuser',
    !r.publication && 'the publication credits_events does not exist',
  ].filter(Boolean);
  if (wanted === 'logical' && missing.length) throw new Error(`EVENTS_TRANSPORT=logical, but ${missing.join('; ')}`);
  let transport: EventTransport = wanted === 'notify' || missing.length ? 'notify' : 'logical';
  const db = `"${r.db.replace(/"/g, '""')}"`;
  try {
    await owner.query(transport === 'logical' ? `ALTER DATABASE ${db} SET credits.events = 'logical'` : `ALTER DATABASE ${db} RESET credits.events`);
  } catch (e) {
    if (transport === 'logical') {
      if (wanted === 'logical') throw e;
      log.warn({ err: (e as Error).message }, 'may not set the database to send events as logical messages: they stay on pg_notify');
      transport = 'notify';
    }
    // A RESET the owner may not make: nothing was set.
  }
  if (transport === 'notify' && wanted === 'auto' && missing.length) log.info({ why: missing }, 'live events travel by pg_notify');
  return transport;
}
