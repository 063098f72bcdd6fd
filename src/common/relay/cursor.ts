/** Opaque keyset cursors over (created_at, id). Clients must treat them as opaque strings. */
import { badUserInput } from '../errors/graphql-errors';

export interface Keyset {
  createdAt: Date;
  id: string;
}

/** The kind of a table's `id` column: what a cursor's id must look like to be compared with it. */
export type IdKind = 'uuid' | 'bigint';

/** A timestamp as toISOString writes it for years 1000-9999 (no sign, no six-digit year). */
const ISO_TIMESTAMP = /^[1-9]\d{3}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
/** A uuid as PostgreSQL prints it (lowercase), the only form this API issues. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** A positive bigint as PostgreSQL prints it (no sign, no leading zero). */
const POSITIVE_INTEGER = /^[1-9]\d{0,18}$/;
const BIGINT_MAX = 9223372036854775807n;

function idFits(id: string, kind: IdKind | undefined): boolean {
  const uuid = UUID.test(id);
  const bigint = POSITIVE_INTEGER.test(id) && BigInt(id) <= BIGINT_MAX;
  return kind === 'uuid' ? uuid : kind === 'bigint' ? bigint : uuid || bigint;
}

export function encodeCursor(k: Keyset): string {
  return Buffer.from(`${k.createdAt.toISOString()}|${k.id}`, 'utf8').toString('base64url');
}

/**
 * The keyset of a cursor this API issued. Anything else is BAD_USER_INPUT on `field` — also a
 * well-encoded cursor whose parts PostgreSQL could not compare with the table's columns (an id
 * of another kind, a NUL, a year outside 1000-9999), which would otherwise reach the database.
 * `idKind` is the kind of the table's id; without it either kind is taken.
 */
export function decodeCursor(cursor: string, field = 'after', idKind?: IdKind): Keyset {
  const refuse = () => badUserInput('The cursor is not one this API issued', [field]);
  const raw = Buffer.from(cursor, 'base64url').toString('utf8');
  const sep = raw.indexOf('|');
  if (sep < 1) throw refuse();
  const stamp = raw.slice(0, sep);
  const id = raw.slice(sep + 1);
  const createdAt = new Date(stamp);
  if (!ISO_TIMESTAMP.test(stamp) || Number.isNaN(createdAt.getTime()) || createdAt.toISOString() !== stamp) throw refuse();
  if (!idFits(id, idKind) || encodeCursor({ createdAt, id }) !== cursor) throw refuse();
  return { createdAt, id };
}
