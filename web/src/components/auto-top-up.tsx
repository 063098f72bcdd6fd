import { useEffect, useState } from 'preact/hooks';
import { useMutation, useQuery } from '@urql/preact';
import {
  AutoTopUpDocument,
  DisableAutoTopUpDocument,
  SetAutoTopUpDocument,
  type AutoTopUpFieldsFragment,
  type PackFieldsFragment,
} from '../../../client/generated/graphql';
import { credits, money, when } from '../format';
import { autoTopUpFailures, autoTopUpState, explain, explainRequest, MESSAGES } from '../messages';

/**
 * Auto top-up: what it does now, and a form to set it or turn it off. The saved settings come
 * from `me.autoTopUp` (the mutations' answers are written there by the cache); `tick` moves when
 * an AUTO_TOP_UP_* notification arrives, and the settings (this month's count, failures, last
 * purchase) are then read again.
 */
export function AutoTopUpPanel({ autoTopUp, packs, suggestedLevel, tick }: {
  autoTopUp: AutoTopUpFieldsFragment | null | undefined;
  packs: PackFieldsFragment[];
  suggestedLevel: number;
  tick: number;
}) {
  const [, refresh] = useQuery({ query: AutoTopUpDocument, pause: true });
  useEffect(() => {
    if (tick > 0) refresh({ requestPolicy: 'network-only' });
  }, [tick]);

  const [packCode, setPackCode] = useState(autoTopUp?.packCode ?? '');
  const [below, setBelow] = useState(String(autoTopUp?.belowCredits ?? Math.max(1, suggestedLevel)));
  const [cap, setCap] = useState(String(autoTopUp?.maxPerMonth ?? 2));
  const [saving, save] = useMutation(SetAutoTopUpDocument);
  const [disabling, disable] = useMutation(DisableAutoTopUpDocument);
  const [outcome, setOutcome] = useState<{ ok: boolean; text: string }>();

  const chosen = packCode || packs[0]?.code || '';
  const packName = (code: string) => packs.find((p) => p.code === code)?.name ?? code;
  const busy = saving.fetching || disabling.fetching;

  const submit = async (e: Event) => {
    e.preventDefault();
    setOutcome(undefined);
    const belowCredits = Number(below);
    const maxPerMonth = Number(cap);
    if (below.trim() === '' || !Number.isInteger(belowCredits)) return setOutcome({ ok: false, text: MESSAGES.autoTopUpWholeLevel });
    if (cap.trim() === '' || !Number.isInteger(maxPerMonth)) return setOutcome({ ok: false, text: MESSAGES.autoTopUpWholeCap });
    const r = await save({ input: { packCode: chosen, belowCredits, maxPerMonth } });
    const out = r.data?.setAutoTopUp;
    if (!out) return setOutcome({ ok: false, text: explainRequest(r.error) ?? 'Something went wrong.' });
    if (out.userErrors.length) return setOutcome({ ok: false, text: explain(out.userErrors[0]) });
    setOutcome({ ok: true, text: MESSAGES.autoTopUpSaved });
  };

  const turnOff = async () => {
    setOutcome(undefined);
    const r = await disable({});
    const out = r.data?.disableAutoTopUp;
    if (!out) return setOutcome({ ok: false, text: explainRequest(r.error) ?? 'Something went wrong.' });
    if (out.userErrors.length) return setOutcome({ ok: false, text: explain(out.userErrors[0]) });
    setOutcome({ ok: true, text: MESSAGES.autoTopUpTurnedOff });
  };

  const on = autoTopUp?.enabled === true;
  const failures = autoTopUp ? autoTopUpFailures(autoTopUp) : undefined;
  return (
    <section class="card" aria-labelledby="auto-top-up-heading" data-testid="auto-top-up" data-enabled={String(on)}>
      <div class="row spread">
        <h2 id="auto-top-up-heading">Auto top-up</h2>
        <span class={on ? 'status succeeded' : 'status'} data-testid="auto-top-up-badge">
          {on ? 'On' : 'Off'}
        </span>
      </div>
      <p data-testid="auto-top-up-state">{autoTopUpState(autoTopUp, packName)}</p>
      {failures && (
        <p class="warn" data-testid="auto-top-up-failures">
          {failures}
        </p>
      )}
      {autoTopUp?.lastPurchaseAt && (
        <p class="muted" data-testid="auto-top-up-last">
          Last automatic purchase: {when(autoTopUp.lastPurchaseAt)}
        </p>
      )}
      <p class="muted">{MESSAGES.autoTopUpHint}</p>
      <form onSubmit={submit} noValidate>
        <label for="auto-pack">Pack to buy</label>
        <select id="auto-pack" data-testid="auto-top-up-pack" value={chosen} onChange={(e) => setPackCode((e.target as HTMLSelectElement).value)}>
          {packs.map((p) => (
            <option key={p.code} value={p.code}>
              {p.name}: {credits(p.credits)} for {money(p.priceCents, p.currency)}
            </option>
          ))}
        </select>
        <label for="auto-below">When the balance falls below (credits)</label>
        <input
          id="auto-below"
          data-testid="auto-top-up-below"
          type="number"
          inputMode="numeric"
          min={1}
          max={1_000_000}
          value={below}
          onInput={(e) => setBelow((e.target as HTMLInputElement).value)}
        />
        <label for="auto-cap">At most this many a month (1 to 31)</label>
        <input
          id="auto-cap"
          data-testid="auto-top-up-cap"
          type="number"
          inputMode="numeric"
          min={1}
          max={31}
          value={cap}
          onInput={(e) => setCap((e.target as HTMLInputElement).value)}
        />
        <div class="row actions">
          <button type="submit" data-testid="save-auto-top-up" disabled={busy || !chosen}>
            {on ? 'Save changes' : 'Turn on'}
          </button>
          {on && (
            <button type="button" class="secondary" data-testid="disable-auto-top-up" disabled={busy} onClick={turnOff}>
              Turn off
            </button>
          )}
        </div>
      </form>
      {outcome &&
        (outcome.ok ? (
          <p role="status" data-testid="auto-top-up-message">
            {outcome.text}
          </p>
        ) : (
          <p role="alert" class="error" data-testid="auto-top-up-error">
            {outcome.text}
          </p>
        ))}
    </section>
  );
}
