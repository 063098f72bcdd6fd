/**
 * The price book's rules and the pure function that turns settings into credits.
 *
 * A generation (one image, or one video) falls in a cost class; its price is the class base,
 * plus per-second credits for videos, plus surcharges (large size, premium model, premium
 * quality), clamped to the class cap. `count` images cost `count` times one. The breakdown
 * lists every part and sums to the total.
 *
 * Why the published ranges and monotonicity hold for every book that passes validateRules():
 * each class's price lies in [base, cap] ⊆ its published range; within a class every part is
 * non-decreasing in duration, size, model and quality; and the classes' ranges are ordered
 * (IMAGE_STANDARD ≤ IMAGE_HIGH ≤ IMAGE_ULTRA, VIDEO_SHORT ≤ VIDEO_STANDARD ≤ VIDEO_PREMIUM), so
 * moving to a higher class never lowers the price.
 */
import { CostClass } from './cost-class.enum';
import type { NormalizedSettings } from './generation-settings';

export interface ClassRule {
  base: number;
  /** Videos: credits per second above the class's first second (SHORT/PREMIUM: 1 s, STANDARD: 6 s). */
  perExtraSecond: number;
  /** Highest price of one generation in this class; null: no cap (VIDEO_PREMIUM). */
  cap: number | null;
  largeSize: number;
  premiumModel: number;
  premiumQuality: number;
}

export interface PriceRules {
  /** Above this many pixels (width × height) a generation is "large". */
  largeSizePixels: number;
  classes: Record<CostClass, ClassRule>;
}

/** The published ranges per generation (API.md); max null: no upper bound. */
export const PUBLISHED_RANGES: Record<CostClass, { min: number; max: number | null }> = {
  [CostClass.IMAGE_STANDARD]: { min: 1, max: 2 },
  [CostClass.IMAGE_HIGH]: { min: 3, max: 4 },
  [CostClass.IMAGE_ULTRA]: { min: 5, max: 8 },
  [CostClass.VIDEO_SHORT]: { min: 5, max: 10 },
  [CostClass.VIDEO_STANDARD]: { min: 10, max: 20 },
  [CostClass.VIDEO_PREMIUM]: { min: 20, max: null },
};

/** Video classes by duration (API.md): SHORT up to 5 s, STANDARD 6–10 s, PREMIUM above. */
export const SHORT_VIDEO_MAX_SECONDS = 5;
export const STANDARD_VIDEO_MAX_SECONDS = 10;

const FIRST_SECOND: Record<CostClass, number> = {
  [CostClass.IMAGE_STANDARD]: 0,
  [CostClass.IMAGE_HIGH]: 0,
  [CostClass.IMAGE_ULTRA]: 0,
  [CostClass.VIDEO_SHORT]: 1,
  [CostClass.VIDEO_STANDARD]: SHORT_VIDEO_MAX_SECONDS + 1,
  [CostClass.VIDEO_PREMIUM]: 1,
};

export const CLASS_LABEL: Record<CostClass, string> = {
  [CostClass.IMAGE_STANDARD]: 'Standard image',
  [CostClass.IMAGE_HIGH]: 'High-quality image',
  [CostClass.IMAGE_ULTRA]: 'Ultra image',
  [CostClass.VIDEO_SHORT]: 'Short video',
  [CostClass.VIDEO_STANDARD]: 'Standard video',
  [CostClass.VIDEO_PREMIUM]: 'Premium video',
};

export interface CostLineValue {
  label: string;
  credits: number;
}

export interface Price {
  credits: number;
  costClass: CostClass;
  breakdown: CostLineValue[];
}

export function costClassOf(s: NormalizedSettings, premiumModel: boolean): CostClass {
  if (s.type === 'IMAGE') {
    return s.imageQuality === 'ULTRA' ? CostClass.IMAGE_ULTRA : s.imageQuality === 'HIGH' ? CostClass.IMAGE_HIGH : CostClass.IMAGE_STANDARD;
  }
  if (s.durationSeconds! > STANDARD_VIDEO_MAX_SECONDS || s.videoQuality === 'PREMIUM' || premiumModel) return CostClass.VIDEO_PREMIUM;
  return s.durationSeconds! > SHORT_VIDEO_MAX_SECONDS ? CostClass.VIDEO_STANDARD : CostClass.VIDEO_SHORT;
}

export function priceOf(rules: PriceRules, s: NormalizedSettings, premiumModel: boolean): Price {
  const costClass = costClassOf(s, premiumModel);
  const rule = rules.classes[costClass];
  const parts: CostLineValue[] = [{ label: CLASS_LABEL[costClass], credits: rule.base }];
  if (s.type === 'VIDEO' && rule.perExtraSecond > 0) {
    const extra = s.durationSeconds! - FIRST_SECOND[costClass];
    if (extra > 0) parts.push({ label: `${extra} s beyond the first ${FIRST_SECOND[costClass]} s`, credits: extra * rule.perExtraSecond });
  }
  if (s.width * s.height > rules.largeSizePixels && rule.largeSize > 0) {
    parts.push({ label: `Large size ${s.width}×${s.height}`, credits: rule.largeSize });
  }
  if (premiumModel && rule.premiumModel > 0) parts.push({ label: `Premium model ${s.model}`, credits: rule.premiumModel });
  if (s.type === 'VIDEO' && s.videoQuality === 'PREMIUM' && rule.premiumQuality > 0) {
    parts.push({ label: 'Premium quality', credits: rule.premiumQuality });
  }
  // Clamp to the class cap: later parts give way first.
  let room = rule.cap ?? Number.MAX_SAFE_INTEGER;
  const one: CostLineValue[] = [];
  for (const p of parts) {
    const credits = Math.min(p.credits, room);
    room -= credits;
    if (credits > 0) one.push({ label: p.label, credits });
  }
  const count = s.type === 'IMAGE' ? s.count : 1;
  const breakdown = one.map((p) => (count > 1 ? { label: `${p.label} ×${count}`, credits: p.credits * count } : p));
  return { credits: breakdown.reduce((sum, p) => sum + p.credits, 0), costClass, breakdown };
}

/** Everything wrong with a rule set; empty when it may be published. */
export function validateRules(rules: PriceRules): string[] {
  const errors: string[] = [];
  if (!Number.isSafeInteger(rules.largeSizePixels) || rules.largeSizePixels < 1) errors.push('largeSizePixels must be a positive whole number');
  for (const cc of Object.values(CostClass)) {
    const r = rules.classes[cc];
    const range = PUBLISHED_RANGES[cc];
    if (!r) {
      errors.push(`${cc}: missing`);
      continue;
    }
    for (const k of ['base', 'perExtraSecond', 'largeSize', 'premiumModel', 'premiumQuality'] as const) {
      if (!Number.isSafeInteger(r[k]) || r[k] < 0 || r[k] > 100_000) errors.push(`${cc}.${k} must be a whole number from 0 to 100000`);
    }
    if (r.base < range.min) errors.push(`${cc}.base must be at least ${range.min} (published range)`);
    if (range.max !== null) {
      if (r.cap === null || r.cap === undefined) errors.push(`${cc}.cap is required (published range ends at ${range.max})`);
      else if (r.cap > range.max) errors.push(`${cc}.cap must be at most ${range.max} (published range)`);
    }
    if (r.cap !== null && r.cap !== undefined) {
      if (!Number.isSafeInteger(r.cap)) errors.push(`${cc}.cap must be a whole number`);
      else if (r.cap < r.base) errors.push(`${cc}.cap must be at least its base`);
    }
    if (cc.startsWith('IMAGE') && r.perExtraSecond !== 0) errors.push(`${cc}.perExtraSecond must be 0 (images have no duration)`);
  }
  return errors;
}

/** The price of the cheapest generation the book allows: the lowest class base (no surcharges). */
export function cheapestPrice(rules: PriceRules): number {
  return Math.min(...Object.values(rules.classes).map((r) => r.base));
}
