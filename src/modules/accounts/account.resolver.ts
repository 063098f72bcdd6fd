import { Arg, Args, Authorized, Ctx, FieldResolver, ID, Query, Resolver, Root } from 'type-graphql';
import { Role } from '../../common/auth/role.enum';
import { ConnectionArgs } from '../../common/relay/connection.args';
import type { ConnectionShape } from '../../common/relay/connection.type';
import { callerId, type Context } from '../../context';
import { Balance } from '../ledger/balance.type';
import { LedgerEntry, LedgerEntryConnection } from '../ledger/ledger-entry.type';
import { ledgerPage } from './holder-pages';
import { Account } from './account.type';
import type { AccountEntity } from './account.entity';
import { Plan } from './plan.type';

@Resolver(_of => Account)
export class AccountResolver {
  @Authorized()
  @Query(_returns => Account, { description: "The caller's own account (opened on first use)." })
  async me(@Ctx() ctx: Context): Promise<Account> {
    const id = callerId(ctx);
    await ctx.services.accounts.ensureOpen(id);
    const row = await ctx.services.accounts.get(id);
    if (!row) throw new Error(`account ${id} vanished`);
    return Account.of(row);
  }

  @Authorized(Role.ADMIN)
  @Query(_returns => Account, { nullable: true, description: 'Any account by id (admin).' })
  async account(@Arg('id', _type => ID) id: string, @Ctx() ctx: Context): Promise<Account | null> {
    const row = id.length <= 128 ? await ctx.services.accounts.get(id) : null;
    return row ? Account.of(row) : null;
  }

  @FieldResolver(_returns => Plan)
  plan(@Root() account: Account, @Ctx() ctx: Context): Promise<Plan> {
    return planOf(account.row, ctx);
  }

  @FieldResolver(_returns => Balance)
  balance(@Root() account: Account): Balance {
    return Balance.ofRow(account.row);
  }

  @FieldResolver(_returns => LedgerEntryConnection, { description: 'Every change to the balance, newest first.' })
  ledger(@Root() account: Account, @Args(_type => ConnectionArgs) page: ConnectionArgs, @Ctx() ctx: Context): Promise<ConnectionShape<LedgerEntry>> {
    return ledgerPage(ctx.services.db, account.id, page);
  }
}

export async function planOf(r: AccountEntity, ctx: Context): Promise<Plan> {
  return {
    tier: await ctx.services.catalog.tier(r.tier),
    interval: r.billingInterval,
    status: r.planStatus,
    currentPeriodStart: r.currentPeriodStart,
    currentPeriodEnd: r.currentPeriodEnd,
    cancelAtPeriodEnd: r.cancelAtPeriodEnd,
    scheduledTier: r.pendingTier ? await ctx.services.catalog.tier(r.pendingTier) : r.pendingInterval ? await ctx.services.catalog.tier(r.tier) : null,
    scheduledInterval: r.pendingInterval ?? (r.pendingTier ? r.billingInterval : null),
  };
}
