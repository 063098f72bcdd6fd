/** Opaque keyset cursors over (created_at, id). Clients must treat them as opaque strings. */
import { badUserInput } from '../errors/graphql-errors';

export interface Keyset {
  createdAt: Date;
  id: string;
}

export function encodeCursor(k: Keyset): string {
  return Buffer.from(`${k.createdAt.toISOString()}|${k.id}`, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string, field = 'after'): Keyset {
  const raw = Buffer.from(cursor, 'base64url').toString('utf8');
  const sep = raw.indexOf('|');
  const createdAt = new Date(raw.slice(0, sep));
  const id = raw.slice(sep + 1);
  if (sep < 1 || Number.isNaN(createdAt.getTime()) || !id || id.length > 64 || encodeCursor({ createdAt, id }) !== cursor) {
    throw badUserInput('The cursor is not one this API issued', field);
  }
  return { createdAt, id };
}
