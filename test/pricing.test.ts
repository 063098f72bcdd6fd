/**
 * Prices and quotes: the price rules as properties (the launch book and any book that
 * validateRules accepts), the quote query through the real API (price, expiry, balance, tier
 * gate, persistence), refusals of bad settings, and publishing a new price-book version.
 * The publish test changes the current book, so it runs last.
 */
import fc from 'fast-check';
import { Role } from '../src/common/auth/role.enum';
import { Feature, GenerationType, TierCode } from '../src/modules/catalog/catalog.enums';
import type { GenerationModelEntity } from '../src/modules/catalog/generation-model.entity';
import { CostClass, ImageQuality, VideoQuality } from '../src/modules/quotes/cost-class.enum';
import { normalizeSettings, MAX_SIDE, MIN_SIDE, type NormalizedSettings, type SettingsInputShape } from '../src/modules/quotes/generation-settings';
import { costClassOf, priceOf, PUBLISHED_RANGES, validateRules, type ClassRule, type Price, type PriceRules } from '../src/modules/quotes/price-rules';
import { balanceOf, openAccount, signupCredits } from './helpers/accounts';
import { useTestApp } from './helpers/test-app';

const t = useTestApp();
const admin = { sub: 'pricing-admin', role: Role.ADMIN };

/** The launch book (migration 1764000000300), written out independently of the code. */
const V1: PriceRules = {
  largeSizePixels: 1024 * 1024,
  classes: {
    IMAGE_STANDARD: { base: 1, perExtraSecond: 0, cap: 2, largeSize: 1, premiumModel: 1, premiumQuality: 0 },
    IMAGE_HIGH: { base: 3, perExtraSecond: 0, cap: 4, largeSize: 1, premiumModel: 1, premiumQuality: 0 },
    IMAGE_ULTRA: { base: 5, perExtraSecond: 0, cap: 8, largeSize: 2, premiumModel: 2, premiumQuality: 0 },
    VIDEO_SHORT: { base: 5, perExtraSecond: 1, cap: 10, largeSize: 1, premiumModel: 0, premiumQuality: 0 },
    VIDEO_STANDARD: { base: 10, perExtraSecond: 2, cap: 20, largeSize: 2, premiumModel: 0, premiumQuality: 0 },
    VIDEO_PREMIUM: { base: 20, perExtraSecond: 2, cap: null, largeSize: 5, premiumModel: 10, premiumQuality: 10 },
  },
};

const IMAGE_QUALITIES = [ImageQuality.STANDARD, ImageQuality.HIGH, ImageQuality.ULTRA];
const VIDEO_QUALITIES = [VideoQuality.STANDARD, VideoQuality.PREMIUM];
const COST_CLASSES = Object.values(CostClass);

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

const side = () => fc.integer({ min: MIN_SIDE, max: MAX_SIDE });

/** Any accepted settings input, over the whole space. */
function settingsArb(models: GenerationModelEntity[]): fc.Arbitrary<SettingsInputShape> {
  const imageModels = models.filter((m) => m.type === GenerationType.IMAGE).map((m) => m.code);
  const videoModels = models.filter((m) => m.type === GenerationType.VIDEO).map((m) => m.code);
  const image = fc.record({
    type: fc.constant(GenerationType.IMAGE),
    model: fc.constantFrom(...imageModels),
    imageQuality: fc.constantFrom(...IMAGE_QUALITIES),
    width: side(),
    height: side(),
    count: fc.integer({ min: 1, max: 4 }),
  });
  const video = fc.record({
    type: fc.constant(GenerationType.VIDEO),
    model: fc.constantFrom(...videoModels),
    durationSeconds: fc.integer({ min: 1, max: 60 }),
    videoQuality: fc.constantFrom(...VIDEO_QUALITIES),
    width: side(),
    height: side(),
  });
  return fc.oneof(image, video);
}

/** A class rule inside its published range (VIDEO_PREMIUM: cap optional). */
function classRuleArb(cc: CostClass): fc.Arbitrary<ClassRule> {
  const range = PUBLISHED_RANGES[cc];
  const isImage = cc.startsWith('IMAGE');
  const surcharge = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 12 }));
  const baseMax = range.max ?? range.min + 200;
  return fc.integer({ min: range.min, max: baseMax }).chain((base) =>
    fc.record({
      base: fc.constant(base),
      perExtraSecond: isImage ? fc.constant(0) : fc.integer({ min: 0, max: 6 }),
      cap: range.max === null ? fc.option(fc.integer({ min: base, max: base + 500 }), { nil: null }) : fc.integer({ min: base, max: range.max }),
      largeSize: surcharge,
      premiumModel: surcharge,
      premiumQuality: surcharge,
    }),
  );
}

const largeSizePixelsArb = fc.oneof(
  fc.integer({ min: 1, max: MAX_SIDE * MAX_SIDE }),
  fc.constantFrom(MIN_SIDE * MIN_SIDE, 1024 * 1024, 2048 * 2048, MAX_SIDE * MAX_SIDE),
);

/** Books inside the published ranges. */
const validBookArb: fc.Arbitrary<PriceRules> = fc.record({
  largeSizePixels: largeSizePixelsArb,
  classes: fc.record(Object.fromEntries(COST_CLASSES.map((cc) => [cc, classRuleArb(cc)])) as Record<CostClass, fc.Arbitrary<ClassRule>>),
});

/** One way to push a valid book outside what may be published. */
type Breakage = { cc: CostClass; how: 'baseBelowRange' | 'capAboveRange' | 'capMissing' | 'capBelowBase' | 'negative' | 'fraction' | 'imageSeconds' | 'missing' } | { how: 'largeSizePixels' };

const breakageArb: fc.Arbitrary<Breakage> = fc.oneof(
  fc.record({
    cc: fc.constantFrom(...COST_CLASSES),
    how: fc.constantFrom('baseBelowRange' as const, 'capBelowBase' as const, 'negative' as const, 'fraction' as const, 'missing' as const),
  }),
  fc.record({
    cc: fc.constantFrom(...COST_CLASSES.filter((c) => PUBLISHED_RANGES[c].max !== null)),
    how: fc.constantFrom('capAboveRange' as const, 'capMissing' as const),
  }),
  fc.record({ cc: fc.constantFrom(CostClass.IMAGE_STANDARD, CostClass.IMAGE_HIGH, CostClass.IMAGE_ULTRA), how: fc.constant('imageSeconds' as const) }),
  fc.constant({ how: 'largeSizePixels' as const }),
);

const SURCHARGE_KEYS = ['perExtraSecond', 'largeSize', 'premiumModel', 'premiumQuality'] as const;

function breakBook(book: PriceRules, b: Breakage, pick: number): PriceRules {
  const out = clone(book);
  if (b.how === 'largeSizePixels') {
    out.largeSizePixels = [0, -1, 1.5][pick % 3];
    return out;
  }
  const r = out.classes[b.cc];
  const range = PUBLISHED_RANGES[b.cc];
  switch (b.how) {
    case 'baseBelowRange':
      r.base = range.min - 1 - (pick % 3);
      break;
    case 'capAboveRange':
      r.cap = range.max! + 1 + (pick % 5);
      break;
    case 'capMissing':
      r.cap = null;
      break;
    case 'capBelowBase':
      r.cap = r.base - 1;
      break;
    case 'negative':
      r[SURCHARGE_KEYS[pick % SURCHARGE_KEYS.length]] = -1 - (pick % 7);
      break;
    case 'fraction':
      r[SURCHARGE_KEYS[pick % SURCHARGE_KEYS.length]] = 0.5;
      break;
    case 'imageSeconds':
      r.perExtraSecond = 1 + (pick % 4);
      break;
    case 'missing':
      delete (out.classes as Partial<Record<CostClass, ClassRule>>)[b.cc];
      break;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The properties (a)-(e)
// ---------------------------------------------------------------------------------------------

interface Priced {
  input: SettingsInputShape;
  settings: NormalizedSettings;
  premium: boolean;
  price: Price;
}

function pricer(rules: PriceRules, models: GenerationModelEntity[]) {
  return (input: SettingsInputShape): Priced => {
    const { settings, model } = normalizeSettings(input, models);
    return { input, settings, premium: model.premium, price: priceOf(rules, settings, model.premium) };
  };
}

/** (a) per-generation price inside its class's published range. */
function checkRange(p: Priced): void {
  const count = p.settings.type === 'IMAGE' ? p.settings.count : 1;
  expect(p.price.credits % count).toBe(0);
  const per = p.price.credits / count;
  const range = PUBLISHED_RANGES[p.price.costClass];
  expect(per).toBeGreaterThanOrEqual(range.min);
  if (range.max !== null) expect(per).toBeLessThanOrEqual(range.max);
}

/** (b) the breakdown sums to the total, and no line is zero or negative. */
function checkBreakdown(p: Priced): void {
  expect(p.price.breakdown.reduce((s, l) => s + l.credits, 0)).toBe(p.price.credits);
  for (const line of p.price.breakdown) {
    expect(Number.isSafeInteger(line.credits)).toBe(true);
    expect(line.credits).toBeGreaterThan(0);
    expect(line.label.length).toBeGreaterThan(0);
  }
}

/** (c) `count` images cost `count` times one. */
function checkCount(p: Priced, price: (i: SettingsInputShape) => Priced): void {
  if (p.settings.type !== 'IMAGE') return;
  const one = price({ ...p.input, count: 1 });
  expect(p.price.credits).toBe(p.settings.count * one.price.credits);
  expect(p.price.costClass).toBe(one.price.costClass);
}

/** Settings that are "at least as much" as `input`, in one dimension each and in all at once. */
function raised(input: SettingsInputShape, alt: { width: number; height: number; duration: number }, models: GenerationModelEntity[]): [string, SettingsInputShape][] {
  const out: [string, SettingsInputShape][] = [];
  const model = models.find((m) => m.code === input.model)!;
  const premiumOfType = models.find((m) => m.type === input.type && m.premium)!;
  const width = Math.max(input.width!, alt.width);
  const height = Math.max(input.height!, alt.height);
  out.push(['wider', { ...input, width }], ['taller', { ...input, height }]);
  if (!model.premium) out.push([`premium model ${premiumOfType.code}`, { ...input, model: premiumOfType.code }]);
  const all: SettingsInputShape = { ...input, width, height, model: model.premium ? input.model : premiumOfType.code };
  if (input.type === GenerationType.IMAGE) {
    const rank = IMAGE_QUALITIES.indexOf(input.imageQuality!);
    for (const q of IMAGE_QUALITIES.slice(rank + 1)) out.push([`quality ${q}`, { ...input, imageQuality: q }]);
    all.imageQuality = ImageQuality.ULTRA;
  } else {
    const duration = Math.max(input.durationSeconds!, alt.duration);
    out.push([`${duration} s`, { ...input, durationSeconds: duration }]);
    if (input.videoQuality === VideoQuality.STANDARD) out.push(['quality PREMIUM', { ...input, videoQuality: VideoQuality.PREMIUM }]);
    all.durationSeconds = duration;
    all.videoQuality = VideoQuality.PREMIUM;
  }
  out.push(['everything raised', all]);
  return out;
}

/** (d) raising quality, size, duration or the model never lowers the price. */
function checkMonotone(p: Priced, alt: { width: number; height: number; duration: number }, price: (i: SettingsInputShape) => Priced, models: GenerationModelEntity[]): void {
  for (const [what, input] of raised(p.input, alt, models)) {
    const higher = price(input).price.credits;
    if (higher < p.price.credits) {
      throw new Error(`${what}: ${JSON.stringify(p.input)} costs ${p.price.credits} but ${JSON.stringify(input)} costs ${higher}`);
    }
  }
}

/** (e) the class, as API.md states it. */
function expectedClass(s: NormalizedSettings, premium: boolean): CostClass {
  if (s.type === 'IMAGE') {
    return { STANDARD: CostClass.IMAGE_STANDARD, HIGH: CostClass.IMAGE_HIGH, ULTRA: CostClass.IMAGE_ULTRA }[s.imageQuality!];
  }
  const d = s.durationSeconds!;
  if (d > 10 || s.videoQuality === VideoQuality.PREMIUM || premium) return CostClass.VIDEO_PREMIUM;
  if (d <= 5) return CostClass.VIDEO_SHORT;
  return CostClass.VIDEO_STANDARD;
}

const altArb = fc.record({ width: side(), height: side(), duration: fc.integer({ min: 1, max: 60 }) });

async function catalogAndBook() {
  const [models, book] = await Promise.all([t.app.server.services.catalog.models(), t.app.server.services.priceBooks.current()]);
  return { models, book };
}

describe('price rules', () => {
  it('the launch book prices every accepted setting inside its published range, sums its breakdown, multiplies by count, never falls when anything is raised, and classes videos as API.md says', async () => {
    const { models, book } = await catalogAndBook();
    expect(book.version).toBe(1);
    expect(book.rules).toEqual(V1);
    expect(models.map((m) => [m.code, m.type, m.premium, m.isDefault])).toEqual([
      ['lumen-image', 'IMAGE', false, true],
      ['lumen-image-fast', 'IMAGE', false, false],
      ['lumen-image-pro', 'IMAGE', true, false],
      ['lumen-video', 'VIDEO', false, true],
      ['lumen-video-pro', 'VIDEO', true, false],
    ]);
    const price = pricer(book.rules, models);
    const seen = new Set<CostClass>();
    fc.assert(
      fc.property(settingsArb(models), altArb, (input, alt) => {
        const p = price(input);
        seen.add(p.price.costClass);
        expect(p.price.costClass).toBe(expectedClass(p.settings, p.premium));
        expect(costClassOf(p.settings, p.premium)).toBe(p.price.costClass);
        checkRange(p);
        checkBreakdown(p);
        checkCount(p, price);
        checkMonotone(p, alt, price, models);
      }),
      { seed: 42, numRuns: 3000 },
    );
    expect([...seen].sort()).toEqual([...COST_CLASSES].sort());
  });

  it('the launch book gives these exact prices', async () => {
    const { models, book } = await catalogAndBook();
    const price = pricer(book.rules, models);
    const I = GenerationType.IMAGE;
    const V = GenerationType.VIDEO;
    const cases: [SettingsInputShape, number, CostClass, [string, number][]][] = [
      [{ type: I, imageQuality: ImageQuality.STANDARD }, 1, CostClass.IMAGE_STANDARD, [['Standard image', 1]]],
      [{ type: I, imageQuality: ImageQuality.STANDARD, width: 1025 }, 2, CostClass.IMAGE_STANDARD, [['Standard image', 1], ['Large size 1025×1024', 1]]],
      [{ type: I, imageQuality: ImageQuality.STANDARD, width: 2048, height: 2048, model: 'lumen-image-pro' }, 2, CostClass.IMAGE_STANDARD,
        [['Standard image', 1], ['Large size 2048×2048', 1]]],
      [{ type: I, imageQuality: ImageQuality.HIGH, count: 4, model: 'lumen-image-fast' }, 12, CostClass.IMAGE_HIGH, [['High-quality image ×4', 12]]],
      [{ type: I, imageQuality: ImageQuality.HIGH, model: 'lumen-image-pro' }, 4, CostClass.IMAGE_HIGH, [['High-quality image', 3], ['Premium model lumen-image-pro', 1]]],
      [{ type: I, imageQuality: ImageQuality.ULTRA }, 5, CostClass.IMAGE_ULTRA, [['Ultra image', 5]]],
      [{ type: I, imageQuality: ImageQuality.ULTRA, width: 8192, height: 8192, model: 'lumen-image-pro', count: 4 }, 32, CostClass.IMAGE_ULTRA,
        [['Ultra image ×4', 20], ['Large size 8192×8192 ×4', 8], ['Premium model lumen-image-pro ×4', 4]]],
      [{ type: V, durationSeconds: 1 }, 5, CostClass.VIDEO_SHORT, [['Short video', 5]]],
      [{ type: V, durationSeconds: 5 }, 9, CostClass.VIDEO_SHORT, [['Short video', 5], ['4 s beyond the first 1 s', 4]]],
      [{ type: V, durationSeconds: 5, width: 2048 }, 10, CostClass.VIDEO_SHORT, [['Short video', 5], ['4 s beyond the first 1 s', 4], ['Large size 2048×1024', 1]]],
      [{ type: V, durationSeconds: 6 }, 10, CostClass.VIDEO_STANDARD, [['Standard video', 10]]],
      [{ type: V, durationSeconds: 8 }, 14, CostClass.VIDEO_STANDARD, [['Standard video', 10], ['2 s beyond the first 6 s', 4]]],
      [{ type: V, durationSeconds: 10, height: 4096 }, 20, CostClass.VIDEO_STANDARD, [['Standard video', 10], ['4 s beyond the first 6 s', 8], ['Large size 1024×4096', 2]]],
      [{ type: V, durationSeconds: 11 }, 40, CostClass.VIDEO_PREMIUM, [['Premium video', 20], ['10 s beyond the first 1 s', 20]]],
      [{ type: V, durationSeconds: 1, videoQuality: VideoQuality.PREMIUM }, 30, CostClass.VIDEO_PREMIUM, [['Premium video', 20], ['Premium quality', 10]]],
      [{ type: V, durationSeconds: 3, model: 'lumen-video-pro' }, 34, CostClass.VIDEO_PREMIUM,
        [['Premium video', 20], ['2 s beyond the first 1 s', 4], ['Premium model lumen-video-pro', 10]]],
      [{ type: V, durationSeconds: 60, model: 'lumen-video-pro', videoQuality: VideoQuality.PREMIUM, width: 8192, height: 8192 }, 163, CostClass.VIDEO_PREMIUM,
        [['Premium video', 20], ['59 s beyond the first 1 s', 118], ['Large size 8192×8192', 5], ['Premium model lumen-video-pro', 10], ['Premium quality', 10]]],
    ];
    for (const [input, credits, costClass, lines] of cases) {
      const p = price(input).price;
      expect({ input, credits: p.credits, costClass: p.costClass, breakdown: p.breakdown.map((l) => [l.label, l.credits]) }).toEqual({
        input,
        credits,
        costClass,
        breakdown: lines,
      });
    }
  });

  it('any book that validateRules accepts keeps the published ranges, the breakdown sum, count × one and monotonicity', async () => {
    const { models } = await catalogAndBook();
    // Mostly valid books, sometimes with one class pushed out of range: only accepted ones are priced.
    const bookArb = fc.tuple(validBookArb, fc.oneof({ arbitrary: fc.constant(undefined), weight: 8 }, { arbitrary: breakageArb, weight: 1 }), fc.nat()).map(([book, b, pick]) => (b ? breakBook(book, b, pick) : book));
    let accepted = 0;
    fc.assert(
      fc.property(bookArb, fc.array(fc.tuple(settingsArb(models), altArb), { minLength: 1, maxLength: 8 }), (rules, samples) => {
        fc.pre(validateRules(rules).length === 0);
        accepted++;
        const price = pricer(rules, models);
        for (const [input, alt] of samples) {
          const p = price(input);
          expect(p.price.costClass).toBe(expectedClass(p.settings, p.premium));
          checkRange(p);
          checkBreakdown(p);
          checkCount(p, price);
          checkMonotone(p, alt, price, models);
        }
      }),
      { seed: 42, numRuns: 600 },
    );
    expect(accepted).toBe(600);
  });

  it('validateRules accepts every book inside the published ranges and refuses any book pushed outside them', () => {
    fc.assert(
      fc.property(validBookArb, breakageArb, fc.nat(), (book, b, pick) => {
        expect(validateRules(book)).toEqual([]);
        expect(validateRules(breakBook(book, b, pick)).length).toBeGreaterThan(0);
      }),
      { seed: 42, numRuns: 1000 },
    );
  });

  it('validateRules names exactly what is wrong with a book', () => {
    // The ranges every property above leans on are the ones API.md publishes.
    expect(PUBLISHED_RANGES).toEqual({
      IMAGE_STANDARD: { min: 1, max: 2 },
      IMAGE_HIGH: { min: 3, max: 4 },
      IMAGE_ULTRA: { min: 5, max: 8 },
      VIDEO_SHORT: { min: 5, max: 10 },
      VIDEO_STANDARD: { min: 10, max: 20 },
      VIDEO_PREMIUM: { min: 20, max: null },
    });
    expect(validateRules(clone(V1))).toEqual([]);
    const book = (edit: (b: PriceRules) => void) => {
      const b = clone(V1);
      edit(b);
      return b;
    };
    expect(validateRules(book((b) => (b.classes.IMAGE_STANDARD.cap = 3)))).toEqual(['IMAGE_STANDARD.cap must be at most 2 (published range)']);
    expect(validateRules(book((b) => (b.classes.VIDEO_PREMIUM.base = 19)))).toEqual(['VIDEO_PREMIUM.base must be at least 20 (published range)']);
    expect(validateRules(book((b) => Object.assign(b.classes.IMAGE_ULTRA, { base: 7, cap: 6 })))).toEqual(['IMAGE_ULTRA.cap must be at least its base']);
    expect(validateRules(book((b) => Object.assign(b.classes.VIDEO_PREMIUM, { base: 30, cap: 25 })))).toEqual(['VIDEO_PREMIUM.cap must be at least its base']);
    expect(validateRules(book((b) => (b.classes.VIDEO_SHORT.premiumModel = -1)))).toEqual([
      'VIDEO_SHORT.premiumModel must be a whole number from 0 to 100000',
    ]);
    expect(validateRules(book((b) => (b.classes.IMAGE_HIGH.largeSize = -2)))).toEqual(['IMAGE_HIGH.largeSize must be a whole number from 0 to 100000']);
    expect(validateRules(book((b) => (b.classes.VIDEO_STANDARD.cap = null)))).toEqual(['VIDEO_STANDARD.cap is required (published range ends at 20)']);
    expect(validateRules(book((b) => (b.classes.IMAGE_HIGH.perExtraSecond = 1)))).toEqual(['IMAGE_HIGH.perExtraSecond must be 0 (images have no duration)']);
    expect(validateRules(book((b) => (b.largeSizePixels = 0)))).toEqual(['largeSizePixels must be a positive whole number']);
    expect(validateRules(book((b) => delete (b.classes as Partial<PriceRules['classes']>).VIDEO_SHORT))).toEqual(['VIDEO_SHORT: missing']);
  });
});

// ---------------------------------------------------------------------------------------------
// Through the API
// ---------------------------------------------------------------------------------------------

const QUOTE = `query Quote($s: GenerationSettingsInput!) {
  quote(settings: $s) {
    id credits costClass breakdown { label credits } priceBookVersion expiresAt
    affordable balanceAfter missingFeatures requiredTier
  }
}`;

interface QuoteData {
  quote: {
    id: string;
    credits: number;
    costClass: CostClass;
    breakdown: { label: string; credits: number }[];
    priceBookVersion: number;
    expiresAt: string;
    affordable: boolean;
    balanceAfter: number;
    missingFeatures: Feature[];
    requiredTier: TierCode | null;
  };
}

async function quoteRows(sub: string): Promise<{ id: string; credits: number; price_book_version: number; account_id: string; cost_class: string }[]> {
  const r = await t.app.audit.query(
    'SELECT id::text, credits, price_book_version, account_id, cost_class FROM quotes WHERE account_id = $1 ORDER BY created_at, id',
    [sub],
  );
  return r.rows;
}

type Gate = [Feature[], TierCode | null];

/** Fixed settings, their exact price with the launch book, and the gate per tier. */
const FIXED: { name: string; s: SettingsInputShape; credits: number; costClass: CostClass; gates: Record<TierCode, Gate> }[] = [
  {
    name: 'a standard image',
    s: { type: GenerationType.IMAGE, imageQuality: ImageQuality.STANDARD },
    credits: 1,
    costClass: CostClass.IMAGE_STANDARD,
    gates: { FREE: [[], TierCode.FREE], CREATOR: [[], TierCode.FREE], PRO: [[], TierCode.FREE], MAX: [[], TierCode.FREE] },
  },
  {
    name: 'four high images',
    s: { type: GenerationType.IMAGE, imageQuality: ImageQuality.HIGH, count: 4, model: 'lumen-image-fast' },
    credits: 12,
    costClass: CostClass.IMAGE_HIGH,
    gates: { FREE: [[], TierCode.FREE], CREATOR: [[], TierCode.FREE], PRO: [[], TierCode.FREE], MAX: [[], TierCode.FREE] },
  },
  {
    name: 'an ultra image',
    s: { type: GenerationType.IMAGE, imageQuality: ImageQuality.ULTRA },
    credits: 5,
    costClass: CostClass.IMAGE_ULTRA,
    gates: {
      FREE: [[Feature.ULTRA_IMAGES], TierCode.CREATOR],
      CREATOR: [[], TierCode.CREATOR],
      PRO: [[], TierCode.CREATOR],
      MAX: [[], TierCode.CREATOR],
    },
  },
  {
    name: 'a 2048 px image',
    s: { type: GenerationType.IMAGE, imageQuality: ImageQuality.STANDARD, width: 2048 },
    credits: 2,
    costClass: CostClass.IMAGE_STANDARD,
    gates: {
      FREE: [[Feature.HIGH_RESOLUTION], TierCode.CREATOR],
      CREATOR: [[], TierCode.CREATOR],
      PRO: [[], TierCode.CREATOR],
      MAX: [[], TierCode.CREATOR],
    },
  },
  {
    name: 'a 4096 px image',
    s: { type: GenerationType.IMAGE, imageQuality: ImageQuality.STANDARD, width: 512, height: 4096 },
    credits: 2,
    costClass: CostClass.IMAGE_STANDARD,
    gates: {
      FREE: [[Feature.HIGH_RESOLUTION], TierCode.PRO],
      CREATOR: [[Feature.HIGH_RESOLUTION], TierCode.PRO],
      PRO: [[], TierCode.PRO],
      MAX: [[], TierCode.PRO],
    },
  },
  {
    name: 'a 5 s video',
    s: { type: GenerationType.VIDEO, durationSeconds: 5 },
    credits: 9,
    costClass: CostClass.VIDEO_SHORT,
    gates: { FREE: [[], TierCode.FREE], CREATOR: [[], TierCode.FREE], PRO: [[], TierCode.FREE], MAX: [[], TierCode.FREE] },
  },
  {
    name: 'an 8 s video',
    s: { type: GenerationType.VIDEO, durationSeconds: 8 },
    credits: 14,
    costClass: CostClass.VIDEO_STANDARD,
    gates: {
      FREE: [[Feature.STANDARD_VIDEOS], TierCode.CREATOR],
      CREATOR: [[], TierCode.CREATOR],
      PRO: [[], TierCode.CREATOR],
      MAX: [[], TierCode.CREATOR],
    },
  },
  {
    name: 'a 12 s video',
    s: { type: GenerationType.VIDEO, durationSeconds: 12 },
    credits: 42,
    costClass: CostClass.VIDEO_PREMIUM,
    gates: {
      FREE: [[Feature.PREMIUM_VIDEOS], TierCode.PRO],
      CREATOR: [[Feature.PREMIUM_VIDEOS], TierCode.PRO],
      PRO: [[], TierCode.PRO],
      MAX: [[], TierCode.PRO],
    },
  },
  {
    name: 'a premium-model video',
    s: { type: GenerationType.VIDEO, durationSeconds: 3, model: 'lumen-video-pro' },
    credits: 34,
    costClass: CostClass.VIDEO_PREMIUM,
    gates: {
      FREE: [[Feature.PREMIUM_VIDEOS, Feature.PREMIUM_MODELS], TierCode.PRO],
      CREATOR: [[Feature.PREMIUM_VIDEOS, Feature.PREMIUM_MODELS], TierCode.PRO],
      PRO: [[], TierCode.PRO],
      MAX: [[], TierCode.PRO],
    },
  },
  {
    name: 'four 8192 px premium ultra images',
    s: { type: GenerationType.IMAGE, imageQuality: ImageQuality.ULTRA, count: 4, width: 8192, height: 8192, model: 'lumen-image-pro' },
    credits: 32,
    costClass: CostClass.IMAGE_ULTRA,
    gates: {
      FREE: [[Feature.ULTRA_IMAGES, Feature.PREMIUM_MODELS, Feature.HIGH_RESOLUTION], TierCode.MAX],
      CREATOR: [[Feature.PREMIUM_MODELS, Feature.HIGH_RESOLUTION], TierCode.MAX],
      PRO: [[Feature.HIGH_RESOLUTION], TierCode.MAX],
      MAX: [[], TierCode.MAX],
    },
  },
];

describe('the quote query', () => {
  it.each([TierCode.FREE, TierCode.CREATOR, TierCode.PRO, TierCode.MAX])(
    'quotes fixed settings on %s exactly as priceOf does, held 10 minutes, with the balance after, the missing features and the required tier, and keeps each quote',
    async (tier) => {
      const sub = `quoter-${tier.toLowerCase()}`;
      // The same balance on every tier, the sign-up credits: the paid month's allowance is taken back.
      const signup = await signupCredits(t.app);
      await openAccount(t.app, sub, { tier, balance: signup });
      const { models, book } = await catalogAndBook();
      const ids: string[] = [];
      for (const c of FIXED) {
        const { settings, model } = normalizeSettings(c.s, models);
        const expected = priceOf(book.rules, settings, model.premium);
        const res = await t.app.raw<QuoteData>(QUOTE, { s: c.s }, { sub });
        expect(res.errors).toBeUndefined();
        const q = res.data!.quote;
        const [missingFeatures, requiredTier] = c.gates[tier];
        expect({ name: c.name, ...q, id: undefined, expiresAt: undefined }).toEqual({
          name: c.name,
          id: undefined,
          expiresAt: undefined,
          credits: c.credits,
          costClass: c.costClass,
          breakdown: expected.breakdown,
          priceBookVersion: 1,
          affordable: c.credits <= signup,
          balanceAfter: signup - c.credits,
          missingFeatures,
          requiredTier,
        });
        expect(expected.credits).toBe(c.credits);
        expect(expected.costClass).toBe(c.costClass);
        // Held 10 minutes from the moment the service's clock priced it.
        const [stored] = (await t.app.audit.query('SELECT created_at, expires_at FROM quotes WHERE id = $1', [q.id])).rows as { created_at: Date; expires_at: Date }[];
        expect(new Date(q.expiresAt).getTime()).toBe(stored.expires_at.getTime());
        expect(stored.expires_at.getTime() - stored.created_at.getTime()).toBe(600_000);
        ids.push(q.id);
      }
      expect(new Set(ids).size).toBe(FIXED.length);
      const rows = await quoteRows(sub);
      expect(rows).toEqual(
        FIXED.map((c, i) => ({ id: ids[i], credits: c.credits, price_book_version: 1, account_id: sub, cost_class: c.costClass })),
      );
      // Quoting spends nothing.
      expect(await balanceOf(t.app, sub)).toBe(signup);
    },
  );

  it('reads the balance at quote time: affordable flips when the balance drops below the price', async () => {
    const sub = 'quoter-poor';
    const signup = await openAccount(t.app, sub);
    const take = await t.app.raw<{ adjustCredits: { userErrors: unknown[] } }>(
      'mutation A($i: AdjustCreditsInput!) { adjustCredits(input: $i) { userErrors { code message } } }',
      { i: { accountId: sub, amount: 8 - signup, reason: 'pricing test', idempotencyKey: 'poor-1' } }, // leaves 8
      admin,
    );
    expect(take.errors).toBeUndefined();
    expect(take.data!.adjustCredits.userErrors).toEqual([]);
    const s = (d: number) => ({ type: GenerationType.VIDEO, durationSeconds: d });
    const eight = await t.app.raw<QuoteData>(QUOTE, { s: s(4) }, { sub }); // 5 + 3 = 8 credits, balance 8
    expect(eight.data!.quote).toMatchObject({ credits: 8, affordable: true, balanceAfter: 0 });
    const nine = await t.app.raw<QuoteData>(QUOTE, { s: s(5) }, { sub });
    expect(nine.data!.quote).toMatchObject({ credits: 9, affordable: false, balanceAfter: -1 });
  });

  it('refuses settings that do not make sense with BAD_USER_INPUT and keeps no quote', async () => {
    const sub = 'quoter-bad';
    await openAccount(t.app, sub, { tier: TierCode.MAX });
    const I = GenerationType.IMAGE;
    const V = GenerationType.VIDEO;
    const bad: [string, Record<string, unknown>][] = [
      ['IMAGE without imageQuality', { type: I }],
      ['IMAGE with durationSeconds', { type: I, imageQuality: 'STANDARD', durationSeconds: 5 }],
      ['IMAGE with videoQuality', { type: I, imageQuality: 'STANDARD', videoQuality: 'PREMIUM' }],
      ['VIDEO without durationSeconds', { type: V }],
      ['VIDEO with imageQuality', { type: V, durationSeconds: 5, imageQuality: 'HIGH' }],
      ['VIDEO with count', { type: V, durationSeconds: 5, count: 1 }],
      ['count 0', { type: I, imageQuality: 'STANDARD', count: 0 }],
      ['count 5', { type: I, imageQuality: 'STANDARD', count: 5 }],
      ['durationSeconds 0', { type: V, durationSeconds: 0 }],
      ['durationSeconds 61', { type: V, durationSeconds: 61 }],
      ['width 63', { type: I, imageQuality: 'STANDARD', width: 63 }],
      ['width 8193', { type: I, imageQuality: 'STANDARD', width: 8193 }],
      ['height 63', { type: V, durationSeconds: 5, height: 63 }],
      ['height 8193', { type: V, durationSeconds: 5, height: 8193 }],
      ['unknown model "nope"', { type: I, imageQuality: 'STANDARD', model: 'nope' }],
      ['an image model for a VIDEO', { type: V, durationSeconds: 5, model: 'lumen-image' }],
      ['a video model for an IMAGE', { type: I, imageQuality: 'STANDARD', model: 'lumen-video-pro' }],
    ];
    for (const [name, s] of bad) {
      const res = await t.app.raw<QuoteData>(QUOTE, { s }, { sub });
      expect({ name, data: res.data ?? null, code: res.errors?.[0]?.extensions?.code }).toEqual({ name, data: null, code: 'BAD_USER_INPUT' });
      expect(await quoteRows(sub)).toEqual([]);
    }
    // The same account still gets a quote for good settings.
    const ok = await t.app.raw<QuoteData>(QUOTE, { s: { type: I, imageQuality: 'STANDARD' } }, { sub });
    expect(ok.data!.quote.credits).toBe(1);
    expect((await quoteRows(sub)).length).toBe(1);
  });

  it('refuses a quote without a token with UNAUTHENTICATED', async () => {
    const before = await t.app.audit.query('SELECT count(*)::int AS n FROM quotes');
    const res = await t.app.raw<QuoteData>(QUOTE, { s: { type: 'IMAGE', imageQuality: 'STANDARD' } });
    expect(res.data ?? null).toBeNull();
    expect(res.errors![0].extensions!.code).toBe('UNAUTHENTICATED');
    const after = await t.app.audit.query('SELECT count(*)::int AS n FROM quotes');
    expect(after.rows[0].n).toBe(before.rows[0].n);
  });
});

// ---------------------------------------------------------------------------------------------
// Publishing (LAST: it changes the current book for everything after it)
// ---------------------------------------------------------------------------------------------

const PRICE_BOOK = `{ priceBook { version note largeSizePixels classes { costClass base perExtraSecond cap largeSize premiumModel premiumQuality rangeMin rangeMax } } }`;
const PUBLISH = `mutation P($i: PublishPriceBookInput!) {
  publishPriceBook(input: $i) {
    priceBook { version note largeSizePixels classes { costClass base cap } }
    userErrors { code message field }
  }
}`;

interface PriceBookData {
  priceBook: {
    version: number;
    note: string;
    largeSizePixels: number;
    classes: (ClassRule & { costClass: CostClass; rangeMin: number; rangeMax: number | null })[];
  };
}
interface PublishData {
  publishPriceBook: {
    priceBook: { version: number; note: string; largeSizePixels: number; classes: { costClass: CostClass; base: number; cap: number | null }[] } | null;
    userErrors: { code: string; message: string; field: string[] | null }[];
  };
}

function bookInput(rules: PriceRules, note: string) {
  return {
    largeSizePixels: rules.largeSizePixels,
    note,
    classes: COST_CLASSES.map((costClass) => ({ costClass, ...rules.classes[costClass] })),
  };
}

function bookView(version: number, note: string, rules: PriceRules): PriceBookData['priceBook'] {
  return {
    version,
    note,
    largeSizePixels: rules.largeSizePixels,
    classes: COST_CLASSES.map((costClass) => ({
      costClass,
      ...rules.classes[costClass],
      rangeMin: PUBLISHED_RANGES[costClass].min,
      rangeMax: PUBLISHED_RANGES[costClass].max,
    })),
  };
}

describe('publishing a price book', () => {
  it('an admin publishes version 2: new quotes use it, earlier quotes keep their price; non-admins and invalid books change nothing', async () => {
    const sub = 'book-user';
    await openAccount(t.app, sub);
    const standard = { type: GenerationType.IMAGE, imageQuality: ImageQuality.STANDARD };
    const versions = async () => (await t.app.audit.query('SELECT version FROM price_books ORDER BY version')).rows.map((r) => r.version);

    const v1 = await t.app.raw<PriceBookData>(PRICE_BOOK);
    expect(v1.errors).toBeUndefined();
    expect(v1.data!.priceBook).toEqual(bookView(1, 'Launch prices', V1));

    const early = await t.app.raw<QuoteData>(QUOTE, { s: standard }, { sub });
    expect(early.data!.quote).toMatchObject({ credits: 1, priceBookVersion: 1, breakdown: [{ label: 'Standard image', credits: 1 }] });

    const v2rules = clone(V1);
    v2rules.classes.IMAGE_STANDARD = { ...v2rules.classes.IMAGE_STANDARD, base: 2, cap: 2 };

    // A user may not publish.
    const refused = await t.app.raw<PublishData>(PUBLISH, { i: bookInput(v2rules, 'by a user') }, { sub });
    expect(refused.data ?? null).toBeNull();
    expect(refused.errors![0].extensions!.code).toBe('FORBIDDEN');
    expect(await versions()).toEqual([1]);

    // An invalid book comes back as userErrors and creates no version.
    const invalid = clone(V1);
    invalid.classes.IMAGE_HIGH.cap = 5;
    const bad = await t.app.raw<PublishData>(PUBLISH, { i: bookInput(invalid, 'too dear') }, admin);
    expect(bad.errors).toBeUndefined();
    expect(bad.data!.publishPriceBook).toEqual({
      priceBook: null,
      userErrors: [{ code: 'INVALID_INPUT', message: 'IMAGE_HIGH.cap must be at most 4 (published range)', field: ['input'] }],
    });
    expect(await versions()).toEqual([1]);

    // A valid book becomes version 2.
    const ok = await t.app.raw<PublishData>(PUBLISH, { i: bookInput(v2rules, 'Standard images at 2') }, admin);
    expect(ok.errors).toBeUndefined();
    expect(ok.data!.publishPriceBook.userErrors).toEqual([]);
    expect(ok.data!.publishPriceBook.priceBook).toEqual({
      version: 2,
      note: 'Standard images at 2',
      largeSizePixels: 1024 * 1024,
      classes: COST_CLASSES.map((costClass) => ({ costClass, base: v2rules.classes[costClass].base, cap: v2rules.classes[costClass].cap })),
    });
    expect(await versions()).toEqual([1, 2]);
    const stored = await t.app.audit.query('SELECT rules, note, published_by FROM price_books WHERE version = 2');
    expect(stored.rows).toEqual([{ rules: v2rules, note: 'Standard images at 2', published_by: admin.sub }]);

    const v2 = await t.app.raw<PriceBookData>(PRICE_BOOK);
    expect(v2.data!.priceBook).toEqual(bookView(2, 'Standard images at 2', v2rules));

    // New quotes use version 2.
    const late = await t.app.raw<QuoteData>(QUOTE, { s: standard }, { sub });
    expect(late.data!.quote).toMatchObject({
      credits: 2,
      costClass: CostClass.IMAGE_STANDARD,
      priceBookVersion: 2,
      breakdown: [{ label: 'Standard image', credits: 2 }],
      balanceAfter: 23,
    });
    // Unchanged classes price as before under the new version.
    const video = await t.app.raw<QuoteData>(QUOTE, { s: { type: GenerationType.VIDEO, durationSeconds: 5 } }, { sub });
    expect(video.data!.quote).toMatchObject({ credits: 9, priceBookVersion: 2 });

    // The earlier quote keeps its price and version.
    const rows = await quoteRows(sub);
    expect(rows.find((r) => r.id === early.data!.quote.id)).toEqual({
      id: early.data!.quote.id,
      credits: 1,
      price_book_version: 1,
      account_id: sub,
      cost_class: CostClass.IMAGE_STANDARD,
    });
    expect(rows.find((r) => r.id === late.data!.quote.id)).toMatchObject({ credits: 2, price_book_version: 2 });
  });
});
