/** What each feature is called and gives, as clients show it (`features` query). */
import { Feature } from './catalog.enums';

export const FEATURE_INFO: Record<Feature, { name: string; description: string }> = {
  ULTRA_IMAGES: { name: 'Ultra images', description: 'Images at the ULTRA quality' },
  STANDARD_VIDEOS: { name: 'Standard videos', description: 'Videos at the STANDARD quality, up to 10 seconds' },
  PREMIUM_VIDEOS: { name: 'Premium videos', description: 'Videos at the PREMIUM quality, the longest and sharpest' },
  PREMIUM_MODELS: { name: 'Premium models', description: 'The models marked premium in the catalog' },
  HIGH_RESOLUTION: { name: 'High resolution', description: "Sides longer than the Free plan's limit, up to your plan's maximum resolution" },
  ADVANCED_TOOLS: { name: 'Advanced tools', description: 'Editing tools beyond generation' },
  CHARACTER_MODELS: { name: 'Character models', description: 'Trained character models (slots per plan)' },
};
