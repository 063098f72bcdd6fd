import { registerEnumType } from 'type-graphql';

export enum CostClass {
  IMAGE_STANDARD = 'IMAGE_STANDARD',
  IMAGE_HIGH = 'IMAGE_HIGH',
  IMAGE_ULTRA = 'IMAGE_ULTRA',
  VIDEO_SHORT = 'VIDEO_SHORT',
  VIDEO_STANDARD = 'VIDEO_STANDARD',
  VIDEO_PREMIUM = 'VIDEO_PREMIUM',
}
export enum ImageQuality {
  STANDARD = 'STANDARD',
  HIGH = 'HIGH',
  ULTRA = 'ULTRA',
}
export enum VideoQuality {
  STANDARD = 'STANDARD',
  PREMIUM = 'PREMIUM',
}

registerEnumType(CostClass, {
  name: 'CostClass',
  description: 'Published ranges per generation: IMAGE_STANDARD 1-2, IMAGE_HIGH 3-4, IMAGE_ULTRA 5-8, VIDEO_SHORT 5-10, VIDEO_STANDARD 10-20, VIDEO_PREMIUM 20+',
});
registerEnumType(ImageQuality, { name: 'ImageQuality' });
registerEnumType(VideoQuality, { name: 'VideoQuality' });
