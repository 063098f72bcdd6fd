import { useEffect, useState } from 'preact/hooks';
import { useMutation, useQuery } from '@urql/preact';
import {
  QuoteDocument,
  StartGenerationDocument,
  type CatalogQuery,
  type GenerationSettingsInput,
  type MeQuery,
  type PackFieldsFragment,
  type UserErrorFieldsFragment,
} from '../../../client/generated/graphql';
import { credits } from '../format';
import { explain, explainRequest } from '../messages';
import { BuyPack } from './buy';

const IMAGE_QUALITIES = ['STANDARD', 'HIGH', 'ULTRA'] as const;
const VIDEO_QUALITIES = ['STANDARD', 'PREMIUM'] as const;

/** The settings as typed, debounced, so the quote follows them without a request per key. */
function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setV(value), ms);
    return () => clearTimeout(t);
  }, [JSON.stringify(value)]);
  return v;
}

export function Generate({ catalog, plan, packs }: { catalog?: CatalogQuery; plan: MeQuery['me']['plan']; packs: PackFieldsFragment[] }) {
  const [type, setType] = useState<'IMAGE' | 'VIDEO'>('IMAGE');
  const [model, setModel] = useState('');
  const [imageQuality, setImageQuality] = useState<(typeof IMAGE_QUALITIES)[number]>('STANDARD');
  const [videoQuality, setVideoQuality] = useState<(typeof VIDEO_QUALITIES)[number]>('STANDARD');
  const [width, setWidth] = useState(1024);
  const [height, setHeight] = useState(1024);
  const [count, setCount] = useState(1);
  const [duration, setDuration] = useState(5);
  const [prompt, setPrompt] = useState('');
  const [refusal, setRefusal] = useState<{ error: Pick<UserErrorFieldsFragment, 'message'> & { code: string }; options: PackFieldsFragment[]; missing: number }>();
  const [started, setStarted] = useState<string>();

  const settings: GenerationSettingsInput =
    type === 'IMAGE'
      ? { type, imageQuality, width, height, count, ...(model ? { model } : {}) }
      : { type, videoQuality, width, height, durationSeconds: duration, ...(model ? { model } : {}) };
  const debounced = useDebounced(settings, 150);
  const [quote] = useQuery({ query: QuoteDocument, variables: { settings: debounced }, requestPolicy: 'network-only' });
  const [start, startGeneration] = useMutation(StartGenerationDocument);
  const q = quote.data?.quote;
  const featureName = (code: string) => catalog?.features.find((f) => f.code === code)?.name ?? code;
  const models = (catalog?.models ?? []).filter((m) => m.type === type);

  const submit = async (e: Event) => {
    e.preventDefault();
    setRefusal(undefined);
    setStarted(undefined);
    const r = await startGeneration({ input: { settings, prompt, quoteId: q?.id, idempotencyKey: crypto.randomUUID() } });
    const out = r.data?.startGeneration;
    if (!out) return setRefusal({ error: { code: 'REQUEST', message: explainRequest(r.error) ?? 'Something went wrong.' }, options: [], missing: 0 });
    if (out.userErrors.length) {
      const need = (out.quote?.credits ?? q?.credits ?? 0) - (out.balance?.available ?? 0);
      const options = (out.topUpOptions.length ? out.topUpOptions : packs).filter((p) => p.credits >= need);
      return setRefusal({ error: out.userErrors[0], options, missing: need });
    }
    setStarted(out.job?.id);
  };

  const num = (set: (n: number) => void) => (e: Event) => set(Number((e.target as HTMLInputElement).value));
  return (
    <section class="card" aria-labelledby="generate-heading">
      <h2 id="generate-heading">Generate</h2>
      <form onSubmit={submit}>
        <fieldset class="row">
          <legend>Type</legend>
          {(['IMAGE', 'VIDEO'] as const).map((t) => (
            <label key={t} class="inline">
              <input type="radio" name="type" value={t} checked={type === t} onChange={() => { setType(t); setModel(''); }} /> {t === 'IMAGE' ? 'Image' : 'Video'}
            </label>
          ))}
        </fieldset>
        <label for="model">Model</label>
        <select id="model" value={model} onChange={(e) => setModel((e.target as HTMLSelectElement).value)}>
          <option value="">Standard model</option>
          {models.map((m) => (
            <option key={m.code} value={m.code}>
              {m.name}{m.premium ? ' (premium)' : ''}
            </option>
          ))}
        </select>
        {type === 'IMAGE' ? (
          <>
            <label for="quality">Quality</label>
            <select id="quality" data-testid="image-quality" value={imageQuality} onChange={(e) => setImageQuality((e.target as HTMLSelectElement).value as typeof imageQuality)}>
              {IMAGE_QUALITIES.map((x) => <option key={x} value={x}>{x.charAt(0) + x.slice(1).toLowerCase()}</option>)}
            </select>
            <label for="count">Images</label>
            <input id="count" data-testid="image-count" type="number" min={1} max={4} value={count} onInput={num(setCount)} />
          </>
        ) : (
          <>
            <label for="vquality">Quality</label>
            <select id="vquality" value={videoQuality} onChange={(e) => setVideoQuality((e.target as HTMLSelectElement).value as typeof videoQuality)}>
              {VIDEO_QUALITIES.map((x) => <option key={x} value={x}>{x.charAt(0) + x.slice(1).toLowerCase()}</option>)}
            </select>
            <label for="duration">Seconds</label>
            <input id="duration" type="number" min={1} max={60} value={duration} onInput={num(setDuration)} />
          </>
        )}
        <div class="row">
          <span>
            <label for="width">Width</label>
            <input id="width" type="number" min={64} max={8192} step={64} value={width} onInput={num(setWidth)} />
          </span>
          <span>
            <label for="height">Height</label>
            <input id="height" type="number" min={64} max={8192} step={64} value={height} onInput={num(setHeight)} />
          </span>
        </div>
        <label for="prompt">Prompt</label>
        <textarea id="prompt" rows={3} required value={prompt} onInput={(e) => setPrompt((e.target as HTMLTextAreaElement).value)} />
        <div class="quote" aria-live="polite">
          {quote.error && <p class="error">{explainRequest(quote.error)}</p>}
          {q && (
            <>
              <p>
                Costs <b data-testid="quote-credits">{q.credits}</b> {q.credits === 1 ? 'credit' : 'credits'}
                {q.affordable ? `; ${credits(q.balanceAfter)} left after` : ' — more than your balance'}
              </p>
              {q.missingFeatures.length > 0 && (
                <p class="warn" data-testid="missing-features">
                  Your {plan.tier.name} plan lacks {q.missingFeatures.map(featureName).join(', ')}
                  {q.requiredTier ? `; the ${q.requiredTier.charAt(0) + q.requiredTier.slice(1).toLowerCase()} plan includes it` : ''}.
                </p>
              )}
            </>
          )}
        </div>
        <button type="submit" data-testid="start-generation" disabled={start.fetching || !prompt.trim() || (q ? q.missingFeatures.length > 0 : false)}>
          Start{q ? ` (${credits(q.credits)})` : ''}
        </button>
      </form>
      {started && <p role="status">Started: see it below.</p>}
      {refusal && (
        <div role="alert" class="error" data-testid="start-refused">
          <p>{explain(refusal.error)}</p>
          {refusal.error.code === 'INSUFFICIENT_CREDITS' && (
            <div class="row">
              <span>{`You need ${credits(refusal.missing)} more. `}</span>
              {refusal.options.map((p) => <BuyPack key={p.code} pack={p} onBought={() => setRefusal(undefined)} />)}
            </div>
          )}
        </div>
      )}
    </section>
  );
}
