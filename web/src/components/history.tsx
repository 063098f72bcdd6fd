import { useState } from 'preact/hooks';
import { useMutation, useQuery } from '@urql/preact';
import { LedgerDocument, PurchasesDocument, RequestRefundDocument, type PurchaseFieldsFragment } from '../../../client/generated/graphql';
import { credits, money, titleCase, when } from '../format';
import { explain, explainRequest } from '../messages';

const PAGE = 10;

export function History() {
  return (
    <div class="grid">
      <Ledger />
      <Purchases />
    </div>
  );
}

/** Keyset pages: "Show more" asks for the page after the last cursor; the cache appends it (relayPagination). */
function Ledger() {
  const [after, setAfter] = useState<string | null>(null);
  const [ledger] = useQuery({ query: LedgerDocument, variables: { first: PAGE, after } });
  const page = ledger.data?.me.ledger;
  return (
    <section class="card" aria-labelledby="ledger-heading">
      <h2 id="ledger-heading">Ledger</h2>
      <table>
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">What</th>
            <th scope="col">Credits</th>
            <th scope="col">Balance</th>
          </tr>
        </thead>
        <tbody>
          {page?.edges.map(({ node: e }) => (
            <tr key={e.id} data-testid="ledger-entry">
              <td>{when(e.createdAt)}</td>
              <td>{e.description}</td>
              <td class={e.amount < 0 ? 'neg' : 'pos'}>{e.amount > 0 ? `+${e.amount}` : e.amount}</td>
              <td>{e.balanceAfter}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {page?.pageInfo.hasNextPage && (
        <button type="button" class="secondary" data-testid="ledger-more" onClick={() => setAfter(page.pageInfo.endCursor ?? null)}>
          Show more
        </button>
      )}
    </section>
  );
}

function Purchases() {
  const [after, setAfter] = useState<string | null>(null);
  const [purchases] = useQuery({ query: PurchasesDocument, variables: { first: PAGE, after } });
  const page = purchases.data?.me.purchases;
  return (
    <section class="card" aria-labelledby="purchases-heading">
      <h2 id="purchases-heading">Purchases and refunds</h2>
      <p class="muted">
        Refund policy: in full within 24 hours of a purchase while none of its credits were used; once a credit is used the purchase is not refundable. Annual plans may get
        back their unused months.
      </p>
      <ul class="plain">
        {page?.edges.map(({ node }) => (
          <PurchaseRow key={node.id} purchase={node} />
        ))}
      </ul>
      {page?.pageInfo.hasNextPage && (
        <button type="button" class="secondary" onClick={() => setAfter(page.pageInfo.endCursor ?? null)}>
          Show more
        </button>
      )}
    </section>
  );
}

function PurchaseRow({ purchase: p }: { purchase: PurchaseFieldsFragment }) {
  const [asking, requestRefund] = useMutation(RequestRefundDocument);
  const [message, setMessage] = useState<string>();
  const ask = async () => {
    const r = await requestRefund({ input: { purchaseId: p.id } });
    const out = r.data?.requestRefund;
    if (!out) return setMessage(explainRequest(r.error));
    if (out.userErrors.length) return setMessage(explain(out.userErrors[0]));
    const rr = out.refundRequest!;
    setMessage(
      rr.status === 'APPROVED'
        ? `Refunded ${money(rr.amountCents, p.currency)}; ${credits(rr.creditsRevoked)} withdrawn.`
        : rr.status === 'PENDING_REVIEW'
          ? 'Your request is with our team; you will be notified.'
          : `Declined: ${rr.decisionReason}`,
    );
  };
  return (
    <li class="purchase" data-testid="purchase" data-status={p.status}>
      <b>{p.packCode ? `${p.packCode} pack` : `${p.tier} plan`}</b>
      {p.automatic && (
        <>
          {' '}
          <span class="pill" data-testid="auto-badge" title="Bought by auto top-up">
            auto
          </span>
        </>
      )}{' '}
      · {credits(p.credits)} · {money(p.amountCents, p.currency)} · {titleCase(p.status)} · {when(p.createdAt)}
      {p.refundRequest && <span class="muted"> · refund {titleCase(p.refundRequest.status)}</span>}
      {p.refundable && (
        <>
          {' '}
          <button type="button" class="secondary" data-testid="request-refund" disabled={asking.fetching} onClick={ask}>
            Ask for a refund
          </button>
          {p.refundableUntil && <span class="muted"> until {when(p.refundableUntil)}</span>}
        </>
      )}
      {message && <p role="status">{message}</p>}
    </li>
  );
}
