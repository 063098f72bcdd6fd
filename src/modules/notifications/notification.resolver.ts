import { render } from './notices';
import { Arg, Args, ArgsType, Authorized, Ctx, Field, FieldResolver, ID, Int, Mutation, Resolver, Root, Subscription } from 'type-graphql';
import { badUserInput } from '../../common/errors/graphql-errors';
import type { WarningEvent } from '../../common/events/events';
import { ConnectionArgs } from '../../common/relay/connection.args';
import type { ConnectionShape } from '../../common/relay/connection.type';
import { paginate } from '../../common/relay/paginate';
import { callerId, eventsOf, type Context } from '../../context';
import { Account } from '../accounts/account.type';
import { CreditWarning, Notification, NotificationConnection, type NotificationRow, WarningLevel } from './notification.type';

@ArgsType()
class NotificationsArgs extends ConnectionArgs {
  @Field(_type => Boolean, { nullable: true, description: 'Only notifications not yet read' })
  unreadOnly?: boolean | null;
}

@Resolver(_of => Account)
export class AccountNotificationsResolver {
  @FieldResolver(_returns => NotificationConnection, { description: 'Warnings, finished jobs, purchases, refunds and renewals, newest first.' })
  notifications(@Root() account: Account, @Args(_type => NotificationsArgs) args: NotificationsArgs, @Ctx() ctx: Context): Promise<ConnectionShape<Notification>> {
    return paginate<NotificationRow, Notification>(ctx.services.db, {
      table: 'notifications',
      where: args.unreadOnly ? 'account_id = $1 AND read_at IS NULL' : 'account_id = $1',
      params: [account.id],
      page: args,
      map: Notification.fromRow,
    });
  }
}

@Resolver()
export class NotificationResolver {
  @Authorized()
  @Mutation(_returns => Int, { description: 'Marks your notifications read (these ids, or all when none are given); returns how many changed.' })
  async markNotificationsRead(
    @Arg('ids', _type => [ID], { nullable: true }) ids: string[] | null,
    @Ctx() ctx: Context,
  ): Promise<number> {
    if (ids && ids.length > 1000) throw badUserInput('at most 1000 ids at a time', 'ids');
    return ctx.services.notifications.markRead(callerId(ctx), ids ?? undefined);
  }

  @Authorized()
  @Subscription(_returns => CreditWarning, {
    description: "Low-credit warnings of the caller's own account.",
    subscribe: ({ context }) => eventsOf(context as Context, 'warning'),
  })
  async creditWarning(@Root() e: WarningEvent, @Ctx() ctx: Context): Promise<CreditWarning> {
    return {
      level: e.level as WarningLevel,
      balance: e.balance,
      threshold: e.threshold,
      message: render(e.level === 'LOW' ? 'lowCredits' : 'creditsDepleted', e),
      topUpOptions: await ctx.services.catalog.packs(),
      at: new Date(e.at),
    };
  }
}
