import { useState } from 'preact/hooks';
import { useMutation, useQuery } from '@urql/preact';
import { ChangePlanDocument, PlanChangePreviewDocument, type BillingInterval, type CatalogQuery, type MeQuery, type TierCode } from '../../../client/generated/graphql';
import { credits, day, money } from '../format';
import { explain, explainRequest } from '../messages';
import { BuyPack } from './buy';

export function Shop({ catalog, plan }: { catalog?: CatalogQuery; plan: MeQuery['me']['plan'] }) {
  const [choice, setChoice] = useState<{ tier: TierCode; interval: BillingInterval }>();
  const [interval, setInterval] = useState<BillingInterval>(plan.interval ?? 'MONTHLY');
  if (!catalog) return null;
  const featureName = (code: string) => catalog.features.find((f) => f.code === code)?.name ?? code;
  return (
    <section class="card" aria-labelledby="shop-heading">
      <h2 id="shop-heading">Top up and plans</h2>
      <h3>Credit packs (never expire)</h3>
      <div class="row">
        {catalog.creditPacks.map((p) => (
          <BuyPack key={p.code} pack={p} />
        ))}
      </div>
      <h3>Plans</h3>
      <fieldset class="row">
        <legend>Billing</legend>
        {(['MONTHLY', 'ANNUAL'] as const).map((i) => (
          <label key={i} class="inline">
            <input type="radio" name="interval" checked={interval === i} onChange={() => setInterval(i)} /> {i === 'MONTHLY' ? 'Monthly' : 'Annual'}
          </label>
        ))}
      </fieldset>
      <ul class="cards tiers">
        {catalog.tiers.map((t) => {
          const current = t.code === plan.tier.code && (t.code === 'FREE' || plan.interval === interval);
          return (
            <li key={t.code} class={current ? 'tier current' : 'tier'} data-testid={`tier-${t.code}`}>
              <b>{t.name}</b>
              <p>
                {t.code === 'FREE' ? 'Free' : interval === 'MONTHLY' ? `${money(t.monthlyPriceCents, t.currency)} a month` : `${money(t.annualPriceCents, t.currency)} a year`}
                {' · '}
                {credits(t.monthlyCredits)} a month · {t.queueClass.toLowerCase()} queue
              </p>
              <p class="muted">{t.features.length ? t.features.map(featureName).join(', ') : 'Standard images'}</p>
              {current ? (
                <span class="muted">Your plan</span>
              ) : (
                <button type="button" class="secondary" data-testid={`choose-${t.code}`} onClick={() => setChoice({ tier: t.code, interval })}>
                  Choose {t.name}
                </button>
              )}
            </li>
          );
        })}
      </ul>
      {choice && <PlanPreview choice={choice} onDone={() => setChoice(undefined)} />}
    </section>
  );
}

/** What a change will charge and give, from planChangePreview (the numbers changePlan then uses), before confirming. */
function PlanPreview({ choice, onDone }: { choice: { tier: TierCode; interval: BillingInterval }; onDone: () => void }) {
  const [preview] = useQuery({ query: PlanChangePreviewDocument, variables: choice, requestPolicy: 'network-only' });
  const [change, changePlan] = useMutation(ChangePlanDocument);
  const [message, setMessage] = useState<string>();
  const p = preview.data?.planChangePreview;
  const confirm = async () => {
    const r = await changePlan({ input: { ...choice, idempotencyKey: crypto.randomUUID() } });
    const out = r.data?.changePlan;
    if (!out) return setMessage(explainRequest(r.error));
    if (out.userErrors.length) return setMessage(explain(out.userErrors[0]));
    if (out.checkoutUrl) return void location.assign(out.checkoutUrl);
    setMessage('Done.');
    onDone();
  };
  return (
    <div class="preview" role="dialog" aria-labelledby="preview-heading" data-testid="plan-preview">
      <h3 id="preview-heading">Change to {choice.tier.charAt(0) + choice.tier.slice(1).toLowerCase()}</h3>
      {preview.error && <p class="error">{explainRequest(preview.error)}</p>}
      {p && p.userErrors.length > 0 && <p class="error">{explain(p.userErrors[0])}</p>}
      {p && p.userErrors.length === 0 && (
        <p>
          {p.amountCents > 0 ? `You pay ${money(p.amountCents, p.currency)} now` : 'Nothing to pay now'}
          {p.creditsGranted > 0 ? ` and get ${credits(p.creditsGranted)} at once` : ''}; it takes effect {day(p.effectiveAt)}.
        </p>
      )}
      <div class="row">
        <button type="button" data-testid="confirm-plan" disabled={!p || p.userErrors.length > 0 || change.fetching} onClick={confirm}>
          Confirm
        </button>
        <button type="button" class="secondary" onClick={onDone}>
          Not now
        </button>
      </div>
      {message && <p role="status">{message}</p>}
    </div>
  );
}
