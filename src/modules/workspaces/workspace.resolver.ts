import { Arg, Args, Authorized, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import { forbidden } from '../../common/errors/graphql-errors';
import { UserError } from '../../common/errors/user-error.type';
import { ConnectionArgs } from '../../common/relay/connection.args';
import type { ConnectionShape } from '../../common/relay/connection.type';
import { decodeCursor, encodeCursor } from '../../common/relay/cursor';
import { jobsPage, ledgerPage, purchasesPage } from '../accounts/holder-pages';
import { callerId, type Context } from '../../context';
import { Account } from '../accounts/account.type';
import { planOf } from '../accounts/account.resolver';
import { AutoTopUp } from '../billing/auto-top-up/auto-top-up.type';
import { Purchase, PurchaseConnection } from '../billing/purchase.type';
import { GenerationJob, GenerationJobConnection } from '../generations/generation-job.type';
import { JobsArgs } from '../generations/generation.resolver';
import { Balance } from '../ledger/balance.type';
import { LedgerEntry, LedgerEntryConnection } from '../ledger/ledger-entry.type';
import { Plan } from '../accounts/plan.type';
import type { MemberOutcome } from './workspace.service';
import {
  CreateWorkspaceInput,
  RemoveWorkspaceMemberInput,
  Workspace,
  WorkspaceMember,
  WorkspaceMemberConnection,
  WorkspaceMemberInput,
  WorkspaceMemberPayload,
  WorkspacePayload,
  WorkspaceRole,
} from './workspace.type';

/** The workspace as `caller` sees it (a member), or null. */
async function workspaceFor(ctx: Context, id: string, caller = callerId(ctx)): Promise<Workspace | null> {
  const m = await ctx.services.workspaces.membership(caller, id);
  if (!m) return null;
  const [w, account] = await Promise.all([ctx.services.workspaces.get(id), ctx.services.accounts.get(id)]);
  return w && account ? Workspace.of(w, account, m.role, caller) : null;
}

@Resolver(_of => Workspace)
export class WorkspaceResolver {
  @Authorized()
  @Query(_returns => Workspace, { nullable: true, description: 'A workspace of yours (members only; null for any other id).' })
  workspace(@Arg('id', _type => ID) id: string, @Ctx() ctx: Context): Promise<Workspace | null> {
    return workspaceFor(ctx, id);
  }

  @Authorized()
  @Mutation(_returns => WorkspacePayload, { description: 'Opens a workspace (FREE, no credits) with the caller as its OWNER. Idempotent with a key.' })
  async createWorkspace(@Arg('input', _type => CreateWorkspaceInput) input: CreateWorkspaceInput, @Ctx() ctx: Context): Promise<WorkspacePayload> {
    await ctx.services.accounts.ensureOpen(callerId(ctx));
    const out = await ctx.services.workspaces.create(callerId(ctx), input);
    return {
      workspace: out.workspaceId ? await workspaceFor(ctx, out.workspaceId) : null,
      userErrors: out.error ? [UserError.of(out.error.code, out.error.message, out.error.field)] : [],
    };
  }

  @Authorized()
  @Mutation(_returns => WorkspaceMemberPayload, { description: 'OWNER/ADMIN: adds a member or changes one (role, monthly limit); making another member OWNER hands ownership over.' })
  async setWorkspaceMember(@Arg('input', _type => WorkspaceMemberInput) input: WorkspaceMemberInput, @Ctx() ctx: Context): Promise<WorkspaceMemberPayload> {
    return memberPayload(ctx, await ctx.services.workspaces.setMember(callerId(ctx), input));
  }

  @Authorized()
  @Mutation(_returns => WorkspaceMemberPayload, { description: 'Removes a member (or the caller leaves); the OWNER cannot leave. Access ends at once, open subscriptions included.' })
  async removeWorkspaceMember(@Arg('input', _type => RemoveWorkspaceMemberInput) input: RemoveWorkspaceMemberInput, @Ctx() ctx: Context): Promise<WorkspaceMemberPayload> {
    return memberPayload(ctx, await ctx.services.workspaces.removeMember(callerId(ctx), input));
  }

  @FieldResolver(_returns => Plan)
  plan(@Root() w: Workspace, @Ctx() ctx: Context): Promise<Plan> {
    return planOf(w.account, ctx);
  }

  @FieldResolver(_returns => Balance)
  balance(@Root() w: Workspace): Balance {
    return Balance.ofRow(w.account);
  }

  @FieldResolver(_returns => AutoTopUp, { nullable: true })
  async autoTopUp(@Root() w: Workspace, @Ctx() ctx: Context): Promise<AutoTopUp | null> {
    const view = await ctx.services.autoTopUps.view(w.id);
    return view ? AutoTopUp.of(view) : null;
  }

  @FieldResolver(_returns => WorkspaceMemberConnection, { description: 'Newest first' })
  async members(@Root() w: Workspace, @Args(_type => ConnectionArgs) page: ConnectionArgs, @Ctx() ctx: Context): Promise<ConnectionShape<WorkspaceMember>> {
    const after = page.after ? decodeCursor(page.after) : null;
    const { rows, more } = await ctx.services.workspaces.members(w.id, { first: page.first, after: after && { joinedAt: after.createdAt, accountId: after.id } });
    const edges = rows.map((r) => ({ cursor: encodeCursor({ createdAt: r.joined_at, id: r.account_id }), node: WorkspaceMember.of(r) }));
    const connection = {
      edges,
      pageInfo: { hasNextPage: more, hasPreviousPage: Boolean(page.after), startCursor: edges[0]?.cursor ?? null, endCursor: edges[edges.length - 1]?.cursor ?? null },
    };
    return Object.defineProperty(connection, 'totalCount', { enumerable: true, get: () => ctx.services.workspaces.memberCount(w.id) }) as ConnectionShape<WorkspaceMember>;
  }

  @FieldResolver(_returns => LedgerEntryConnection, { description: 'Every change to the pool, newest first' })
  ledger(@Root() w: Workspace, @Args(_type => ConnectionArgs) page: ConnectionArgs, @Ctx() ctx: Context): Promise<ConnectionShape<LedgerEntry>> {
    return ledgerPage(ctx.services.db, w.id, page);
  }

  @FieldResolver(_returns => GenerationJobConnection, { description: 'Every job paid by the pool, newest first' })
  jobs(@Root() w: Workspace, @Args(_type => JobsArgs) args: JobsArgs, @Ctx() ctx: Context): Promise<ConnectionShape<GenerationJob>> {
    return jobsPage(ctx.services.db, 'account_id', w.id, args);
  }

  @FieldResolver(_returns => PurchaseConnection, { description: 'Packs and plans bought for the pool, newest first' })
  purchases(@Root() w: Workspace, @Args(_type => ConnectionArgs) page: ConnectionArgs, @Ctx() ctx: Context): Promise<ConnectionShape<Purchase>> {
    return purchasesPage(ctx.services.db, w.id, page);
  }
}

@Resolver(_of => Account)
export class AccountWorkspacesResolver {
  @FieldResolver(_returns => [Workspace], { description: 'The workspaces this account is a member of, oldest membership first' })
  async workspaces(@Root() account: Account, @Ctx() ctx: Context): Promise<Workspace[]> {
    const list = await ctx.services.workspaces.listFor(account.id);
    const out: Workspace[] = [];
    for (const w of list) {
      const row = await ctx.services.accounts.get(w.id);
      if (row) out.push(Workspace.of(w, row, w.role as WorkspaceRole, account.id));
    }
    return out;
  }
}

async function memberPayload(ctx: Context, out: MemberOutcome): Promise<WorkspaceMemberPayload> {
  if (out.forbidden) throw forbidden(out.forbidden);
  return {
    member: out.member ? WorkspaceMember.of(out.member) : null,
    // The caller may have just left: then they see no workspace.
    workspace: out.workspaceId ? await workspaceFor(ctx, out.workspaceId) : null,
    userErrors: out.error ? [UserError.of(out.error.code, out.error.message, out.error.field)] : [],
  };
}
