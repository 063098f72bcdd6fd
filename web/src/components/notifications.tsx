import { useEffect } from 'preact/hooks';
import { useMutation, useQuery } from '@urql/preact';
import { NotificationsDocument, ReadNotificationsDocument } from '../../../client/generated/graphql';
import { when } from '../format';

/** The newest notifications; `tick` moves when notificationAdded brings one (the list is then read again). */
export function Notifications({ unread, tick }: { unread: number; tick: number }) {
  const [list, refetch] = useQuery({ query: NotificationsDocument, variables: { first: 10 } });
  const [reading, readNotifications] = useMutation(ReadNotificationsDocument);
  useEffect(() => {
    if (tick > 0) refetch({ requestPolicy: 'network-only' });
  }, [tick]);
  const items = list.data?.me.notifications.edges.map((e) => e.node) ?? [];
  const count = list.data?.me.unreadNotificationCount ?? unread;
  return (
    <section class="card" aria-labelledby="notes-heading">
      <div class="row spread">
        <h2 id="notes-heading">
          Notifications {count > 0 && <span class="pill" data-testid="unread-count">{count} unread</span>}
        </h2>
        {count > 0 && (
          <button type="button" class="secondary" disabled={reading.fetching} onClick={() => readNotifications({}).then(() => refetch({ requestPolicy: 'network-only' }))}>
            Mark all read
          </button>
        )}
      </div>
      <ul class="plain">
        {items.map((n) => (
          <li key={n.id} data-testid="notification" data-kind={n.kind} class={n.readAt ? 'read' : 'unread'}>
            <span>{n.message}</span> <span class="muted">{when(n.createdAt)}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}
