import { registerEnumType } from 'type-graphql';

export enum TierCode {
  FREE = 'FREE',
  CREATOR = 'CREATOR',
  PRO = 'PRO',
  MAX = 'MAX',
}
export enum BillingInterval {
  MONTHLY = 'MONTHLY',
  ANNUAL = 'ANNUAL',
}
/** Claim order: INSTANT > FAST > PRIORITY > STANDARD. */
export enum QueueClass {
  STANDARD = 'STANDARD',
  PRIORITY = 'PRIORITY',
  FAST = 'FAST',
  INSTANT = 'INSTANT',
}
/** The claim order of the queue classes (generation_jobs.queue_rank): lower is claimed first. */
export const QUEUE_RANK: Record<QueueClass, number> = { INSTANT: 0, FAST: 1, PRIORITY: 2, STANDARD: 3 };
export enum Feature {
  ULTRA_IMAGES = 'ULTRA_IMAGES',
  STANDARD_VIDEOS = 'STANDARD_VIDEOS',
  PREMIUM_VIDEOS = 'PREMIUM_VIDEOS',
  PREMIUM_MODELS = 'PREMIUM_MODELS',
  HIGH_RESOLUTION = 'HIGH_RESOLUTION',
  ADVANCED_TOOLS = 'ADVANCED_TOOLS',
  CHARACTER_MODELS = 'CHARACTER_MODELS',
}
export enum GenerationType {
  IMAGE = 'IMAGE',
  VIDEO = 'VIDEO',
}

registerEnumType(TierCode, { name: 'TierCode' });
registerEnumType(BillingInterval, { name: 'BillingInterval' });
registerEnumType(QueueClass, { name: 'QueueClass', description: 'Claim order: INSTANT > FAST > PRIORITY > STANDARD' });
registerEnumType(Feature, { name: 'Feature' });
registerEnumType(GenerationType, { name: 'GenerationType' });
