import { Field, InputType, Int } from 'type-graphql';
import { GenerationType } from '../catalog/catalog.enums';
import { ImageQuality, VideoQuality } from './cost-class.enum';
import { MAX_SIDE, MIN_SIDE } from './generation-settings';

/** Checked by normalizeSettings (every rule there, for quotes and starts alike), not class-validator. */
@InputType({ description: 'What to generate. Type-specific fields are required for their type and refused for the other.' })
export class GenerationSettingsInput {
  @Field(_type => GenerationType) type: GenerationType;

  @Field(_type => String, { nullable: true, description: "Model code (see `models`); default: the type's standard model" })
  model?: string | null;

  @Field(_type => ImageQuality, { nullable: true, description: 'IMAGE only, required there' })
  imageQuality?: ImageQuality | null;

  @Field(_type => Int, { nullable: true, description: `Pixels, ${MIN_SIDE} to ${MAX_SIDE}; default 1024` })
  width?: number | null;

  @Field(_type => Int, { nullable: true, description: `Pixels, ${MIN_SIDE} to ${MAX_SIDE}; default 1024` })
  height?: number | null;

  @Field(_type => Int, { nullable: true, description: 'IMAGE only: images per request, 1 to 4, default 1' })
  count?: number | null;

  @Field(_type => Int, { nullable: true, description: 'VIDEO only, required there: 1 to 60 seconds' })
  durationSeconds?: number | null;

  @Field(_type => VideoQuality, { nullable: true, description: 'VIDEO only; default STANDARD' })
  videoQuality?: VideoQuality | null;
}
