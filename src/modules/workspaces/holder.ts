/**
 * Whose account an operation acts on: the caller's own, or — with a `workspaceId` — the
 * workspace's, when the caller is a member (and, for what only managers may do, its OWNER or an
 * ADMIN). A non-member gets exactly what an id that does not exist gets (NOT_FOUND); a MEMBER
 * asking what only managers may is FORBIDDEN.
 */
import { GraphQLError } from 'graphql';
import { forbidden } from '../../common/errors/graphql-errors';
import { UserErrorCode } from '../../common/errors/user-error-code.enum';
import { callerId, type Context } from '../../context';
import type { Need } from './workspace.service';

export interface Holder {
  /** The account that pays and owns: the caller's, or the workspace's. */
  accountId: string;
  /** The member acting for the workspace (null: the caller acts for themselves). */
  member: string | null;
}

export const NO_SUCH_WORKSPACE = 'No workspace of yours has this id';

export type HolderOrError = Holder | { error: { code: UserErrorCode; message: string; field: string[] } };

/** The holder, or the NOT_FOUND userError at `field`; a MEMBER asking a manager's operation throws FORBIDDEN. */
export async function holderOf(ctx: Context, workspaceId: string | null | undefined, need: Need, field: string[]): Promise<HolderOrError> {
  const caller = callerId(ctx);
  if (workspaceId == null) return { accountId: caller, member: null };
  const access = await ctx.services.workspaces.access(caller, workspaceId, need);
  if ('refusal' in access) {
    if (access.refusal === 'FORBIDDEN') throw forbidden('Only the OWNER or an ADMIN of the workspace may do this');
    return { error: { code: UserErrorCode.NOT_FOUND, message: NO_SUCH_WORKSPACE, field } };
  }
  return { accountId: workspaceId, member: caller };
}

/** The same for operations without userErrors (queries, subscriptions): NOT_FOUND as a GraphQL error. */
export async function holderOrThrow(ctx: Context, workspaceId: string | null | undefined, need: Need, field: string[]): Promise<Holder> {
  const h = await holderOf(ctx, workspaceId, need, field);
  if ('error' in h) throw new GraphQLError(h.error.message, { extensions: { code: 'NOT_FOUND', field } });
  return h;
}
