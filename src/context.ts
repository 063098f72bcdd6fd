/** One Context shape for HTTP requests and websocket operations. */
import type { Identity } from './common/auth/jwt';
import { bounded } from './common/events/bounded';
import { untilRemoved } from './common/events/until-removed';
import type { DomainEvent } from './common/events/events';
import { Role } from './common/auth/role.enum';
import { isDatabaseUnavailable, unavailableError } from './common/errors/format-error';
import type { Services } from './services';

export interface Context {
  /** The verified token, when one was sent. */
  identity?: Identity;
  services: Services;
  /** Websocket operations: drops the connection (a subscriber too slow to keep up). */
  dropConnection?: () => void;
  /** The client address the rate limits count against (common/limits/client-address.ts). */
  address?: string;
}

/** Builds the context for a verified identity; opens the account of a new user on first sight. */
export async function buildContext(services: Services, identity: Identity | undefined, address: string | undefined, dropConnection?: () => void): Promise<Context> {
  if (identity && identity.role === Role.USER) {
    try {
      await services.accounts.ensureOpen(identity.sub);
    } catch (e) {
      if (isDatabaseUnavailable(e)) throw unavailableError();
      throw e;
    }
  }
  return { identity, services, address, dropConnection };
}

/**
 * The caller's events of one type — or, with `holder`, those of the account it names (a
 * workspace the caller is a member of: ending at once if they are removed) — bounded for
 * websocket subscribers (see common/events/bounded).
 */
export function eventsOf<T extends DomainEvent['type']>(ctx: Context, type: T, holder?: { accountId: string; member: string | null }): AsyncIterable<Extract<DomainEvent, { type: T }>> {
  const events = ctx.services.events;
  const raw = events.subscribe(type, holder?.accountId ?? callerId(ctx));
  const source = holder?.member ? untilRemoved(raw, events.subscribe('membership', holder.accountId), holder.member) : raw;
  if (!ctx.dropConnection) return source;
  // The metrics follow what the operation takes, for the event lag at its send (websocket-server.ts).
  return ctx.services.metrics.taking(ctx, bounded(source, ctx.services.config.wsMaxBufferedBytes, ctx.dropConnection), (e) => ctx.services.events.receivedAt(e));
}

/** The caller's account id (resolvers behind @Authorized()). */
export function callerId(ctx: Context): string {
  if (!ctx.identity) throw new Error('callerId used without @Authorized');
  return ctx.identity.sub;
}
