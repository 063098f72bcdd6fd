import { useEffect, useState } from 'preact/hooks';
import { useQuery, useSubscription } from '@urql/preact';
import { BalanceChangedDocument, CatalogDocument, CreditWarningDocument, MeDocument, NotificationAddedDocument } from '../../client/generated/graphql';
import type { Identity } from './auth';
import type { Connection } from './client';
import { Admin } from './components/admin';
import { AutoTopUpPanel } from './components/auto-top-up';
import { BalancePanel, LowCreditBanner } from './components/balance';
import { Generate } from './components/generate';
import { History } from './components/history';
import { Jobs } from './components/jobs';
import { Notifications } from './components/notifications';
import { Shop } from './components/shop';
import { Workspaces } from './components/workspaces';
import { explainRequest } from './messages';

export function App({ identity, connection, onSignOut }: { identity: Identity; connection: Connection; onSignOut: () => void }) {
  const [me] = useQuery({ query: MeDocument });
  const [catalog] = useQuery({ query: CatalogDocument, requestPolicy: 'cache-first' });
  const [online, setOnline] = useState(true);
  const [notificationTick, setNotificationTick] = useState(0);
  const [autoTopUpTick, setAutoTopUpTick] = useState(0);
  // Live: the balance (current value first on every (re)connect), warnings, notifications; jobs in <Jobs>.
  useSubscription({ query: BalanceChangedDocument });
  const [warning] = useSubscription({ query: CreditWarningDocument });
  useSubscription({ query: NotificationAddedDocument }, (_prev, data) => {
    setNotificationTick((n) => n + 1);
    // An automatic purchase ended (bought or failed): its count, failures and date changed.
    if (data.notificationAdded.kind.startsWith('AUTO_TOP_UP_')) setAutoTopUpTick((n) => n + 1);
    return data;
  });
  useEffect(() => {
    // No refetch on (re)connect: balanceChanged sends the current balance first, and a refetch
    // that answered after a newer event would put the older balance back on the screen.
    const offConnected = connection.onConnected(() => setOnline(true));
    const offClosed = connection.ws.on('closed', () => setOnline(false));
    return () => {
      offConnected();
      offClosed();
    };
  }, [connection]);

  const account = me.data?.me;
  const packs = catalog.data?.creditPacks ?? [];
  const isAdmin = identity.role === 'admin';
  return (
    <>
      <header class="top">
        <strong>Credits</strong>
        <span class="who">
          {identity.sub} · {identity.role}
        </span>
        {account && (
          <span class="balance" aria-live="polite">
            <span class="muted">Balance </span>
            <b data-testid="balance">{account.balance.available}</b>
            <span class="muted"> credits</span>
          </span>
        )}
        {!online && <span class="offline" role="status">Reconnecting…</span>}
        <nav>
          <a href="/graphiql">GraphiQL</a>
          <button type="button" class="link" onClick={onSignOut}>
            Sign out
          </button>
        </nav>
      </header>
      <main>
        {me.error && !account && <p role="alert" class="error">{explainRequest(me.error)}</p>}
        {account && (
          <>
            <LowCreditBanner balance={account.balance} warning={warning.data?.creditWarning} packs={packs} />
            <div class="grid">
              <BalancePanel balance={account.balance} plan={account.plan} />
              <Generate catalog={catalog.data} plan={account.plan} packs={packs} />
            </div>
            <Jobs />
            <Shop catalog={catalog.data} plan={account.plan} />
            <AutoTopUpPanel autoTopUp={account.autoTopUp} packs={packs} suggestedLevel={account.balance.lowCreditThreshold} tick={autoTopUpTick} />
            <Workspaces />
            <History />
            <Notifications unread={account.unreadNotificationCount} tick={notificationTick} />
          </>
        )}
        {isAdmin && <Admin />}
      </main>
    </>
  );
}
