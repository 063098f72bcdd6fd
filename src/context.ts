/** One Context shape for HTTP requests and websocket operations. */
import type { Identity } from './common/auth/jwt';
import { Role } from './common/auth/role.enum';
import type { Services } from './services';

export interface Context {
  /** The verified token, when one was sent. */
  identity?: Identity;
  services: Services;
}

/** Builds the context for a verified identity; opens the account of a new user on first sight. */
export async function buildContext(services: Services, identity: Identity | undefined): Promise<Context> {
  if (identity && identity.role === Role.USER) await services.accounts.ensureOpen(identity.sub);
  return { identity, services };
}

/** The caller's account id (resolvers behind @Authorized()). */
export function callerId(ctx: Context): string {
  if (!ctx.identity) throw new Error('callerId used without @Authorized');
  return ctx.identity.sub;
}
