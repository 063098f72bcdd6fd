import { Arg, Authorized, Ctx, FieldResolver, ID, Int, Mutation, Resolver, Root, Subscription } from 'type-graphql';
import { badUserInput } from '../../common/errors/graphql-errors';
import { transaction } from '../../common/db/transaction';
import { currentFirst } from '../../common/events/current-first';
import { readOnce } from '../../common/events/event-reads';
import type { BalanceChangedEvent } from '../../common/events/events';
import { callerId, eventsOf, type Context } from '../../context';
import { Balance } from './balance.type';
import { CreditExpiry } from './credit-expiry.type';
import { CreditLot } from './credit-lot.type';
import { runwayOf } from './runway';
import { holderOrThrow } from '../workspaces/holder';
import { Runway } from './runway.type';

export const MAX_LOW_CREDIT_THRESHOLD = 1_000_000;

@Resolver(_of => Balance)
export class BalanceResolver {
  @FieldResolver(_returns => ID, { description: "The holder's account id: a balance event and a query's balance are one object in a client cache" })
  id(@Root() balance: Balance): string {
    return balance.accountId;
  }

  @FieldResolver(_returns => [CreditLot])
  lots(@Root() balance: Balance, @Ctx() ctx: Context): Promise<CreditLot[]> {
    const read = () => ctx.services.ledger.lots(balance.accountId);
    // A balance event's lots are read once for all its subscribers on this instance (the list is shared, never changed).
    return balance.event ? readOnce(balance.event, 'lots', read) : read();
  }

  @FieldResolver(_returns => CreditExpiry, { nullable: true, description: 'The soonest instant some of these credits expire, and how many then; null when none will' })
  nextExpiry(@Root() balance: Balance, @Ctx() ctx: Context): Promise<CreditExpiry | undefined> {
    const read = () => ctx.services.expiries.nextExpiry(balance.accountId);
    return balance.event ? readOnce(balance.event, 'nextExpiry', read) : read();
  }

  @FieldResolver(_returns => Runway, { description: 'How far the balance goes at today\'s prices and the last 30 days\' spend' })
  runway(@Root() balance: Balance, @Ctx() ctx: Context): Promise<Runway> {
    const { db, clock, quotes } = ctx.services;
    const read = () => runwayOf(db, clock, quotes, balance.accountId, balance.available);
    // An event's balance is one value for all its subscribers: one read for them all.
    return balance.event ? readOnce(balance.event, 'runway', read) : read();
  }

  @Authorized()
  @Mutation(_returns => Balance, { description: `Sets the caller's low-credit warning level (0 to ${MAX_LOW_CREDIT_THRESHOLD}).` })
  async setLowCreditThreshold(@Arg('threshold', _type => Int) threshold: number, @Ctx() ctx: Context): Promise<Balance> {
    if (threshold < 0 || threshold > MAX_LOW_CREDIT_THRESHOLD) {
      throw badUserInput(`threshold must be between 0 and ${MAX_LOW_CREDIT_THRESHOLD}`, ['threshold']);
    }
    const id = callerId(ctx);
    await ctx.services.accounts.ensureOpen(id);
    const b = await transaction(ctx.services.db, (tx) => ctx.services.ledger.setLowCreditThreshold(tx, id, threshold));
    if (!b) throw new Error(`account ${id} vanished`);
    return Balance.of(b);
  }

  @Authorized()
  @Subscription(_returns => Balance, {
    description: "The caller's balance (or, with workspaceId, the workspace's pool: members only) as it is now, then after every committed change to it.",
    subscribe: async ({ context, args }) => {
      const ctx = context as Context;
      const holder = await holderOrThrow(ctx, (args as { workspaceId?: string | null }).workspaceId, 'member', ['workspaceId']);
      const accountId = holder.accountId;
      return currentFirst<BalanceChangedEvent>(
        eventsOf(ctx, 'balance', holder),
        async () => {
          const b = await ctx.services.ledger.balance(accountId);
          return b && { type: 'balance', ...b };
        },
        (a, b) => a.available === b.available && a.lowCreditThreshold === b.lowCreditThreshold,
      );
    },
  })
  balanceChanged(
    @Root() event: BalanceChangedEvent,
    @Arg('workspaceId', _type => ID, { nullable: true, description: "A workspace's pool (members only)" }) _workspaceId: string | null,
  ): Balance {
    return Balance.of(event, { event });
  }
}
