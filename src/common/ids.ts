import { createHash } from 'node:crypto';

/**
 * A UUID derived from its parts: the same parts always give the same id. Used as the purchase
 * id of a charge that may be attempted again (a retried request, a renewal run twice), so the
 * provider, keyed by purchase id, charges once.
 */
export function derivedId(...parts: string[]): string {
  const h = createHash('sha256').update(parts.join('\u0000')).digest('hex');
  const variant = ((parseInt(h[16], 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True for a UUID; ids that are not cannot name a row, so callers answer "not found" at once. */
export function isUuid(id: string): boolean {
  return UUID.test(id);
}

/** Workspace account ids: `workspace:<uuid>` (no token subject may start so: common/auth/jwt.ts). */
export const WORKSPACE_ID_PREFIX = 'workspace:';

export const isWorkspaceId = (id: string): boolean => id.startsWith(WORKSPACE_ID_PREFIX) && isUuid(id.slice(WORKSPACE_ID_PREFIX.length));
