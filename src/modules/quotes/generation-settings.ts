/**
 * Settings as the service uses them: validated across fields, defaults filled in, and a
 * canonical key so a quote can be matched against the settings of a later start.
 */
import { badUserInput } from '../../common/errors/graphql-errors';
import { GenerationType } from '../catalog/catalog.enums';
import type { GenerationModelEntity } from '../catalog/generation-model.entity';
import type { ImageQuality, VideoQuality } from './cost-class.enum';

export const MIN_SIDE = 64;
export const MAX_SIDE = 8192;
export const DEFAULT_SIDE = 1024;

export interface NormalizedSettings {
  type: 'IMAGE' | 'VIDEO';
  model: string;
  width: number;
  height: number;
  /** IMAGE: 1..4; VIDEO: always 1. */
  count: number;
  imageQuality?: ImageQuality;
  durationSeconds?: number;
  videoQuality?: VideoQuality;
}

export interface SettingsInputShape {
  type: GenerationType;
  model?: string | null;
  imageQuality?: ImageQuality | null;
  width?: number | null;
  height?: number | null;
  count?: number | null;
  durationSeconds?: number | null;
  videoQuality?: VideoQuality | null;
}

const given = (v: unknown) => v !== undefined && v !== null;

/** Throws BAD_USER_INPUT naming the field when the settings do not make sense together. */
export function normalizeSettings(
  input: SettingsInputShape,
  models: GenerationModelEntity[],
  path = 'settings',
): { settings: NormalizedSettings; model: GenerationModelEntity } {
  const field = (f: string) => [...path.split('.'), f];
  const sideOk = (v: number) => Number.isInteger(v) && v >= MIN_SIDE && v <= MAX_SIDE;
  const width = input.width ?? DEFAULT_SIDE;
  const height = input.height ?? DEFAULT_SIDE;
  if (!sideOk(width)) throw badUserInput(`width must be ${MIN_SIDE} to ${MAX_SIDE} pixels`, field('width'));
  if (!sideOk(height)) throw badUserInput(`height must be ${MIN_SIDE} to ${MAX_SIDE} pixels`, field('height'));
  const model = input.model
    ? models.find((m) => m.code === input.model)
    : models.find((m) => m.type === input.type && m.isDefault);
  if (typeof input.model === 'string' && input.model.length > 64) throw badUserInput('model must be at most 64 characters', field('model'));
  if (!model) throw badUserInput(`unknown model "${input.model}"; see the models query`, field('model'));
  if (model.type !== input.type) throw badUserInput(`model "${model.code}" makes ${model.type} generations, not ${input.type}`, field('model'));

  if (input.type === GenerationType.IMAGE) {
    if (!given(input.imageQuality)) throw badUserInput('imageQuality is required for IMAGE', field('imageQuality'));
    if (given(input.durationSeconds)) throw badUserInput('durationSeconds is for VIDEO only', field('durationSeconds'));
    if (given(input.videoQuality)) throw badUserInput('videoQuality is for VIDEO only', field('videoQuality'));
    const count = input.count ?? 1;
    if (!Number.isInteger(count) || count < 1 || count > 4) throw badUserInput('count must be 1 to 4', field('count'));
    return { settings: { type: 'IMAGE', model: model.code, width, height, count, imageQuality: input.imageQuality! }, model };
  }
  if (given(input.imageQuality)) throw badUserInput('imageQuality is for IMAGE only', field('imageQuality'));
  if (given(input.count)) throw badUserInput('count is for IMAGE only (one video per request)', field('count'));
  if (!given(input.durationSeconds)) throw badUserInput('durationSeconds is required for VIDEO', field('durationSeconds'));
  const d = input.durationSeconds!;
  if (!Number.isInteger(d) || d < 1 || d > 60) throw badUserInput('durationSeconds must be 1 to 60', field('durationSeconds'));
  return {
    settings: { type: 'VIDEO', model: model.code, width, height, count: 1, durationSeconds: d, videoQuality: input.videoQuality ?? ('STANDARD' as VideoQuality) },
    model,
  };
}

/** A canonical string for "the same settings". */
export function settingsKey(s: NormalizedSettings): string {
  return [s.type, s.model, s.width, s.height, s.count, s.imageQuality ?? '-', s.durationSeconds ?? '-', s.videoQuality ?? '-'].join('|');
}
