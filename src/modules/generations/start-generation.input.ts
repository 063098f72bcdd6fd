import { IsOptional, Length, Matches, MaxLength } from 'class-validator';
import { Field, ID, InputType } from 'type-graphql';
import { GenerationSettingsInput } from '../quotes/generation-settings.input';
import { IdempotencyKeyField } from '../../common/idempotency/idempotency-key.field';

@InputType()
export class StartGenerationInput {
  /** Not @ValidateNested: the generation service checks every settings rule (normalizeSettings). */
  @Field(_type => GenerationSettingsInput)
  settings: GenerationSettingsInput;

  @Field(_type => String, { description: '1 to 2000 characters, not blank' })
  @Length(1, 2000)
  @Matches(/\S/, { message: 'prompt must not be blank' })
  @Matches(/^[^\u0000]*$/, { message: 'prompt must not contain NUL characters' })
  prompt: string;

  @Field(_type => ID, { nullable: true, description: 'Start at the price of this quote (same settings, not expired)' })
  @IsOptional()
  @MaxLength(64)
  quoteId?: string | null;

  @Field(_type => ID, { nullable: true, description: "Generate from a workspace's pool (any member; their monthly limit applies)" })
  @IsOptional()
  @MaxLength(128)
  workspaceId?: string | null;

  @IdempotencyKeyField()
  idempotencyKey?: string | null;
}
