import { useState } from 'preact/hooks';
import { useMutation } from '@urql/preact';
import { PurchaseCreditPackDocument, type PackFieldsFragment } from '../../../client/generated/graphql';
import { credits, money } from '../format';
import { explain, explainRequest } from '../messages';

/** Buys a pack: the sandbox completes at once; with Stripe the page goes to Checkout. One key per click, so a retry never buys twice. */
export function BuyPack({ pack, onBought }: { pack: PackFieldsFragment; onBought?: () => void }) {
  const [state, buy] = useMutation(PurchaseCreditPackDocument);
  const [message, setMessage] = useState<string>();
  const [key] = useState(() => crypto.randomUUID());
  const click = async () => {
    setMessage(undefined);
    const r = await buy({ input: { packCode: pack.code, idempotencyKey: `${key}-${Date.now()}` } });
    const out = r.data?.purchaseCreditPack;
    if (!out) return setMessage(explainRequest(r.error));
    if (out.userErrors.length) return setMessage(explain(out.userErrors[0]));
    if (out.checkoutUrl) return void location.assign(out.checkoutUrl);
    setMessage(`Added ${credits(out.purchase?.credits ?? pack.credits)}.`);
    onBought?.();
  };
  return (
    <span class="buy">
      <button type="button" data-testid={`buy-pack-${pack.code}`} disabled={state.fetching} onClick={click}>
        Buy {pack.name}: {credits(pack.credits)} for {money(pack.priceCents, pack.currency)}
      </button>
      {message && <span role="status" class="muted"> {message}</span>}
    </span>
  );
}
