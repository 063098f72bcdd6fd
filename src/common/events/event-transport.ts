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
 * EVENTS_TRANSPORT=notify is the default for now: a logical message can reach the reader a
 * moment before its transaction is visible to other sessions (the commit record is written and
 * streamed before the transaction leaves the running set), so a payload that reads the row it
 * announces (jobUpdated's job, notificationAdded's notification) may not find it yet — seen once
 * in the tenant-isolation suite. pg_notify delivers after the commit is visible. Until the reader
 * waits for visibility before handing a transaction's events on, `logical` and `auto` (logical
 * where the database allows it) are opt-in. The choice is
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
