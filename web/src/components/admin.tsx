import { useState } from 'preact/hooks';
import { useMutation, useQuery } from '@urql/preact';
import { AccountLookupDocument, AdjustCreditsDocument, RefundReviewQueueDocument, ReviewRefundRequestDocument } from '../../../client/generated/graphql';
import { credits, day, money, titleCase, when } from '../format';
import { explain, explainRequest } from '../messages';

export function Admin() {
  return (
    <div class="grid">
      <AccountAdmin />
      <RefundReview />
    </div>
  );
}

function AccountAdmin() {
  const [id, setId] = useState('');
  const [looked, setLooked] = useState<string>();
  const [account, refetch] = useQuery({ query: AccountLookupDocument, variables: { id: looked ?? '' }, pause: !looked });
  const [adjusting, adjustCredits] = useMutation(AdjustCreditsDocument);
  const [amount, setAmount] = useState(0);
  const [reason, setReason] = useState('');
  const [message, setMessage] = useState<string>();
  const a = account.data?.account;
  const adjust = async (e: Event) => {
    e.preventDefault();
    const r = await adjustCredits({ input: { accountId: looked!, amount, reason, idempotencyKey: crypto.randomUUID() } });
    const out = r.data?.adjustCredits;
    if (!out) return setMessage(explainRequest(r.error));
    if (out.userErrors.length) return setMessage(explain(out.userErrors[0]));
    setMessage(`Done: the balance is ${credits(out.balance!.available)}.`);
    refetch({ requestPolicy: 'network-only' });
  };
  return (
    <section class="card" aria-labelledby="lookup-heading">
      <h2 id="lookup-heading">Admin: accounts</h2>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          setMessage(undefined);
          setLooked(id.trim());
        }}
      >
        <label for="lookup">Account id</label>
        <input id="lookup" data-testid="account-lookup" value={id} onInput={(e) => setId((e.target as HTMLInputElement).value)} />
        <button type="submit">Look up</button>
      </form>
      {looked && !account.fetching && !a && <p role="status">No account has this id.</p>}
      {a && (
        <>
          <p>
            <b>{a.id}</b>: {credits(a.balance.available)} · {a.plan.tier.name} plan ({titleCase(a.plan.status)}) · lots:{' '}
            {a.balance.lots.map((l) => `${l.remaining} ${titleCase(l.source).toLowerCase()} (expires ${day(l.expiresAt)})`).join(', ') || 'none'}
          </p>
          <form onSubmit={adjust}>
            <label for="amount">Credits (+ grant, − take)</label>
            <input id="amount" data-testid="adjust-amount" type="number" value={amount} onInput={(e) => setAmount(Number((e.target as HTMLInputElement).value))} />
            <label for="reason">Reason (kept in the ledger)</label>
            <input id="reason" data-testid="adjust-reason" required value={reason} onInput={(e) => setReason((e.target as HTMLInputElement).value)} />
            <button type="submit" data-testid="adjust-credits" disabled={adjusting.fetching || amount === 0 || !reason.trim()}>
              Adjust credits
            </button>
          </form>
        </>
      )}
      {message && <p role="status">{message}</p>}
    </section>
  );
}

function RefundReview() {
  const [queue, refetch] = useQuery({ query: RefundReviewQueueDocument, variables: { first: 20 } });
  const [reviewing, review] = useMutation(ReviewRefundRequestDocument);
  const [message, setMessage] = useState<string>();
  const decide = async (id: string, approve: boolean) => {
    const r = await review({ input: { id, approve, note: approve ? 'Approved from the dashboard' : 'Declined from the dashboard' } });
    const out = r.data?.reviewRefundRequest;
    if (!out) return setMessage(explainRequest(r.error));
    if (out.userErrors.length) return setMessage(explain(out.userErrors[0]));
    setMessage(`${titleCase(out.refundRequest!.status)}.`);
    refetch({ requestPolicy: 'network-only' });
  };
  const items = queue.data?.refundRequestsToReview.edges.map((e) => e.node) ?? [];
  return (
    <section class="card" aria-labelledby="review-heading" data-testid="refund-review">
      <h2 id="review-heading">Admin: refunds to review</h2>
      {queue.error && <p class="error">{explainRequest(queue.error)}</p>}
      {items.length === 0 && <p class="muted">Nothing waits for a decision.</p>}
      <ul class="plain">
        {items.map((r) => (
          <li key={r.id} data-testid="review-item">
            {r.purchase.packCode ? `${r.purchase.packCode} pack` : `${r.purchase.tier} plan`} · {money(r.amountCents, r.purchase.currency)} proposed ·{' '}
            {credits(r.creditsRevoked)} to withdraw · asked {when(r.createdAt)}
            {r.reason ? ` · “${r.reason}”` : ''} · {r.decisionReason}{' '}
            <button type="button" disabled={reviewing.fetching} data-testid="approve-refund" onClick={() => decide(r.id, true)}>
              Approve
            </button>{' '}
            <button type="button" class="secondary" disabled={reviewing.fetching} onClick={() => decide(r.id, false)}>
              Decline
            </button>
          </li>
        ))}
      </ul>
      {message && <p role="status">{message}</p>}
    </section>
  );
}
