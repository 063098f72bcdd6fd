/**
 * One generation start as the service decided it, as the database function start_generation
 * takes it: the composite type start_command (db/types/start_command.sql), field for field and
 * by name (the batch sends a JSON array of these; json_populate_record maps it).
 * test/db-functions.test.ts checks that the type and START_COMMAND_COLUMNS agree.
 */
import type { QueueClass, TierCode } from '../catalog/catalog.enums';

export interface StartCommand {
  account: string;
  credits: number;
  description: string;
  job: string;
  type: string;
  settings: unknown;
  prompt: string;
  cost_class: string;
  price_book_version: number;
  quote: string | null;
  /** The account's tier and plan status the tier gate decided for: start_generation refuses as stale when either changed. */
  tier: TierCode;
  plan_status: string;
  queue_class: QueueClass;
  queue_rank: number;
  key: string | null;
  request_hash: string | null;
  /** What the idempotency key keeps when the start is debited. */
  response: unknown;
  now: Date;
  /** The member starting it, when the account is a workspace (their monthly limit is checked); null for oneself. */
  member: string | null;
}

/** The SQL type of each field, in the type's order. */
export const START_COMMAND_COLUMNS: { [K in keyof StartCommand]-?: string } = {
  account: 'text',
  credits: 'integer',
  description: 'text',
  job: 'uuid',
  type: 'text',
  settings: 'jsonb',
  prompt: 'text',
  cost_class: 'text',
  price_book_version: 'integer',
  quote: 'uuid',
  tier: 'text',
  plan_status: 'text',
  queue_class: 'text',
  queue_rank: 'integer',
  key: 'text',
  request_hash: 'text',
  response: 'jsonb',
  now: 'timestamp with time zone',
  member: 'text',
};

/** What start_generation answers for one command. */
export type StartResult =
  | { outcome: 'debited' | 'short'; balance: number; threshold: number; tier: TierCode; plan_status: string }
  /** The member's spending this month (`balance`) plus this start would pass their limit (`threshold`). */
  | { outcome: 'member_limit'; balance: number; threshold: number; tier: TierCode; plan_status: string }
  /** The starting member is not (or no longer) a member of the workspace. */
  | { outcome: 'not_member'; balance: null; threshold: null; tier: null; plan_status: null }
  | { outcome: 'stale'; balance: null; threshold: null; tier: TierCode; plan_status: string }
  | { outcome: 'busy' | 'key_taken'; balance: null; threshold: null; tier: null; plan_status: null };
