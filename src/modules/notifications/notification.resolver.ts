import { Arg, Args, ArgsType, Authorized, Ctx, Field, FieldResolver, ID, Int, Mutation, ObjectType, Resolver, Root, Subscription } from 'type-graphql';
import { readOnce } from '../../common/events/event-reads';
import type { NotificationEvent, WarningEvent } from '../../common/events/events';
import { ConnectionArgs } from '../../common/relay/connection.args';
import type { ConnectionShape } from '../../common/relay/connection.type';
import { paginate } from '../../common/relay/paginate';
import { callerId, eventsOf, type Context } from '../../context';
import { Account } from '../accounts/account.type';
import { render } from './notices';
import { holderOrThrow } from '../workspaces/holder';
import { untilRemoved } from '../../common/events/until-removed';
import { filterAsync } from '../../common/events/filter-async';
import { CreditWarning, Notification, NotificationConnection, type NotificationRow, WarningLevel } from './notification.type';

@ArgsType()
class NotificationsArgs extends ConnectionArgs {
  @Field(_type => Boolean, { nullable: true, description: 'Only notifications not yet read' })
  unreadOnly?: boolean | null;
}

@ObjectType({ description: 'The notifications marked read, as they are now, and how many stay unread.' })
class ReadNotificationsPayload {
  @Field(_type => [Notification]) notifications: Notification[];
  @Field(_type => Int) unreadCount: number;
}

@Resolver(_of => Account)
export class AccountNotificationsResolver {
  @FieldResolver(_returns => Int, { description: 'Notifications not yet read' })
  unreadNotificationCount(@Root() account: Account, @Ctx() ctx: Context): Promise<number> {
    return ctx.services.notifications.unreadCount(account.id);
  }

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
    return ctx.services.notifications.markRead(callerId(ctx), ids ?? undefined);
  }

  @Authorized()
  @Mutation(_returns => ReadNotificationsPayload, {
    description: "Marks the caller's unread notifications read (these ids — others' ids are ignored — or all) and returns them, so a client cache updates.",
  })
  async readNotifications(@Arg('ids', _type => [ID], { nullable: true }) ids: string[] | null, @Ctx() ctx: Context): Promise<ReadNotificationsPayload> {
    const id = callerId(ctx);
    const rows = await ctx.services.notifications.read(id, ids ?? undefined);
    return { notifications: rows.map(Notification.fromRow), unreadCount: await ctx.services.notifications.unreadCount(id) };
  }

  @Authorized()
  @Subscription(_returns => Notification, {
    description: "Each notification of the caller's account as it is kept, after commit (the list's newest entry, and one more unread); with workspaceId, only those about that workspace.",
    subscribe: async ({ context, args }) => {
      const ctx = context as Context;
      const workspaceId = (args as { workspaceId?: string | null }).workspaceId;
      if (workspaceId == null) return eventsOf(ctx, 'notification');
      const holder = await holderOrThrow(ctx, workspaceId, 'member', ['workspaceId']);
      // The caller's own notifications (their copies of the workspace's, their limit), ending if they are removed.
      const own = eventsOf(ctx, 'notification', { accountId: callerId(ctx), member: null });
      const mine = untilRemoved(own, ctx.services.events.subscribe('membership', holder.accountId), callerId(ctx));
      return filterAsync(mine, async (e) => (await readOnce(e, 'notification', () => ctx.services.notifications.get(e.accountId, e.notificationId)))?.workspace_id === workspaceId);
    },
  })
  async notificationAdded(
    @Root() e: NotificationEvent,
    @Arg('workspaceId', _type => ID, { nullable: true, description: 'Only notifications about this workspace (members only)' }) _workspaceId: string | null,
    @Ctx() ctx: Context,
  ): Promise<Notification> {
    // Read once for every subscriber of this event on this instance; fromRow copies it.
    const row = await readOnce(e, 'notification', () => ctx.services.notifications.get(e.accountId, e.notificationId));
    if (!row) throw new Error(`notification ${e.notificationId} vanished`);
    return Notification.fromRow(row);
  }

  @Authorized()
  @Subscription(_returns => CreditWarning, {
    description: "Low-credit warnings of the caller's own account (or, with workspaceId, of the workspace's pool: members only).",
    subscribe: async ({ context, args }) => {
      const ctx = context as Context;
      const holder = await holderOrThrow(ctx, (args as { workspaceId?: string | null }).workspaceId, 'member', ['workspaceId']);
      return eventsOf(ctx, 'warning', holder);
    },
  })
  async creditWarning(
    @Root() e: WarningEvent,
    @Arg('workspaceId', _type => ID, { nullable: true, description: "A workspace's pool (members only)" }) _workspaceId: string | null,
    @Ctx() ctx: Context,
  ): Promise<CreditWarning> {
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
