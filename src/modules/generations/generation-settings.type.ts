import { Field, Int, ObjectType } from 'type-graphql';
import { GenerationType } from '../catalog/catalog.enums';
import { ImageQuality, VideoQuality } from '../quotes/cost-class.enum';
import type { NormalizedSettings } from '../quotes/generation-settings';

@ObjectType({ description: 'The settings a job was priced and started with, defaults filled in.' })
export class GenerationSettings {
  @Field(_type => GenerationType) type: GenerationType;
  @Field(_type => String) model: string;
  @Field(_type => ImageQuality, { nullable: true }) imageQuality: ImageQuality | null;
  @Field(_type => Int) width: number;
  @Field(_type => Int) height: number;
  @Field(_type => Int) count: number;
  @Field(_type => Int, { nullable: true }) durationSeconds: number | null;
  @Field(_type => VideoQuality, { nullable: true }) videoQuality: VideoQuality | null;

  static of(s: NormalizedSettings): GenerationSettings {
    return Object.assign(new GenerationSettings(), {
      type: s.type, model: s.model, imageQuality: s.imageQuality ?? null, width: s.width, height: s.height, count: s.count,
      durationSeconds: s.durationSeconds ?? null, videoQuality: s.videoQuality ?? null,
    });
  }
}
