/**
 * Which features a generation needs, and which of them the caller's tier lacks.
 * FREE: standard and high images up to 1024 px, short videos, standard models.
 * CREATOR adds ULTRA images, standard videos (and advanced tools), up to 2048 px.
 * PRO adds premium models, premium videos and high resolution. MAX has everything.
 * (Which tier has which feature and resolution is catalog data.)
 */
import { Feature, TierCode } from '../catalog/catalog.enums';
import type { TierEntity } from '../catalog/tier.entity';
import { CostClass } from './cost-class.enum';
import type { NormalizedSettings } from './generation-settings';

/** The tier whose features an account has: an unpaid (PAST_DUE) plan gives FREE features until it is paid. */
export function featureTier(account: { tier: TierCode; plan_status: string }): TierCode {
  return account.plan_status === 'PAST_DUE' ? TierCode.FREE : account.tier;
}

/** Why a start is refused by the gate, in the caller's words. */
export function gateRefusalMessage(account: { tier: TierCode; plan_status: string }, missing: Feature[], requiredTier: TierCode | null): string {
  const lacks = missing.join(', ');
  if (featureTier(account) !== account.tier) {
    return `Your ${account.tier} plan is unpaid: until it is paid you have the ${featureTier(account)} plan's features, which do not include ${lacks}`;
  }
  return `Your ${account.tier} plan does not include ${lacks}` + (requiredTier ? `; the ${requiredTier} plan does` : '');
}

export function requiredFeatures(costClass: CostClass, premiumModel: boolean): Feature[] {
  const needs: Feature[] = [];
  if (costClass === CostClass.IMAGE_ULTRA) needs.push(Feature.ULTRA_IMAGES);
  if (costClass === CostClass.VIDEO_STANDARD) needs.push(Feature.STANDARD_VIDEOS);
  if (costClass === CostClass.VIDEO_PREMIUM) needs.push(Feature.PREMIUM_VIDEOS);
  if (premiumModel) needs.push(Feature.PREMIUM_MODELS);
  return needs;
}

/** Features the tier lacks for these settings; HIGH_RESOLUTION when a side passes its limit. */
export function missingFeatures(tier: TierEntity, s: NormalizedSettings, costClass: CostClass, premiumModel: boolean): Feature[] {
  const missing = requiredFeatures(costClass, premiumModel).filter((f) => !tier.features.includes(f));
  if (Math.max(s.width, s.height) > tier.maxResolution) missing.push(Feature.HIGH_RESOLUTION);
  return missing;
}

/** The cheapest tier that allows these settings, if any. */
export function cheapestTierAllowing(tiers: TierEntity[], s: NormalizedSettings, costClass: CostClass, premiumModel: boolean): TierEntity | undefined {
  return [...tiers].sort((a, b) => a.rank - b.rank).find((t) => missingFeatures(t, s, costClass, premiumModel).length === 0);
}
