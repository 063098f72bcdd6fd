/**
 * Idempotency keys: one mechanism for every keyed mutation (startGeneration, purchaseCreditPack,
 * changePlan, adjustCredits).
 *
 * One stored shape: a row of idempotency_keys (scope = the caller, key, operation, a hash of the
 * input that defines "the same request", response, created_at). The response is the first
 * outcome reduced to what the operation needs to answer again: ids, numbers and its refusal —
 * never a whole object, so a replay shows the state as it is now.
 *
 * One flow, entirely in the service:
 *   1. lookup: a key already kept answers at once — the first outcome (replayed by the
 *      operation), or IDEMPOTENCY_KEY_REUSED when it was kept for other input;
 *   2. the work and the claim (the database function idempotency_claim) in one transaction;
 *   3. a claim lost to a concurrent duplicate that committed first rolls this work back and
 *      answers with the first outcome.
 * Refusals are kept too, so a retry after a top-up gets the same answer. The generation start
 * runs steps 2–3 inside its own database function (one round trip per batch of starts,
 * start_generation.sql), with the response the service built.
 */
import { createHash } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { isUniqueViolation } from '../db/sql';
import { Rollback, transaction, type Tx } from '../db/transaction';
import { UserErrorCode } from '../errors/user-error-code.enum';

export interface IdempotencyKey {
  scope: string;
  key: string;
  operation: string;
  hash: string;
}

/** Anything that runs a statement and returns its rows: the pool (DataSource) or a transaction. */
interface Queryable {
  query(sql: string, params?: unknown[]): Promise<unknown>;
}

/** The userError every operation answers for a key used before with other input. */
export function keyReusedError(): { code: UserErrorCode; message: string; field: string[] } {
  return { code: UserErrorCode.IDEMPOTENCY_KEY_REUSED, message: 'This idempotency key was already used with other input', field: ['input', 'idempotencyKey'] };
}

/** A key whose first use is older than the replay window, for an operation whose ids derive from the key. */
export function keyExpiredError(): { code: UserErrorCode; message: string; field: string[] } {
  return { code: UserErrorCode.IDEMPOTENCY_KEY_REUSED, message: 'This idempotency key was used before the replay window; send a new key for a new request', field: ['input', 'idempotencyKey'] };
}

function stableJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`)
    .join(',')}}`;
}

export function requestHash(operation: string, input: unknown): string {
  return createHash('sha256').update(operation).update('\0').update(stableJson(input)).digest('base64url');
}

/** The key of a request, or undefined when it has none. `input` defines "the same request". */
export function keyFor(scope: string, key: string | null | undefined, operation: string, input: unknown): IdempotencyKey | undefined {
  return key ? { scope, key, operation, hash: requestHash(operation, input) } : undefined;
}

/** What a key holds: nothing yet, the first outcome, or a record for other input. */
export type Kept<S> = undefined | { response: S } | 'reused';

export async function lookup<S>(q: Queryable, k: IdempotencyKey): Promise<Kept<S>> {
  const [row] = (await q.query('SELECT operation, request_hash, response FROM idempotency_keys WHERE scope = $1 AND key = $2', [k.scope, k.key])) as {
    operation: string;
    request_hash: string;
    response: S;
  }[];
  if (!row) return undefined;
  return row.operation === k.operation && row.request_hash === k.hash ? { response: row.response } : 'reused';
}

/** Keeps `response` under the key; false when the key was taken (nothing is written then). */
export async function claim(q: Queryable, k: IdempotencyKey, response: unknown, now: Date): Promise<boolean> {
  const [row] = (await q.query('SELECT idempotency_claim($1, $2, $3, $4, $5, $6) AS claimed', [
    k.scope, k.key, k.operation, k.hash, JSON.stringify(response ?? null), now,
  ])) as { claimed: boolean }[];
  return row.claimed;
}

/** The answer for a key found kept: the operation's replay, or IDEMPOTENCY_KEY_REUSED. */
export async function answerKept<S, R>(kept: Exclude<Kept<S>, undefined>, replay: (response: S) => Promise<R>): Promise<R | { error: ReturnType<typeof keyReusedError> }> {
  return kept === 'reused' ? { error: keyReusedError() } : replay(kept.response);
}

export interface KeyedSteps<S, R> {
  /** Runs once the key is known to be free, before the transaction; an answer ends the request. */
  prepare?: () => Promise<R | undefined>;
  /** The mutation's work in its transaction; returns the outcome to keep. */
  work: (tx: Tx) => Promise<S>;
  /** The answer after commit for a fresh outcome. */
  answer: (fresh: S) => Promise<R>;
  /** The answer from a kept outcome (a retry, or a concurrent duplicate that won). */
  replay: (kept: S) => Promise<R>;
  /** Unique constraints a concurrent duplicate trips before its claim (ids derived from the key). */
  duplicateOn?: string[];
}

const TAKEN = Symbol('taken');

/** Runs a mutation under its key (or without one): lookup, work + claim in one transaction, answer. */
export async function keyed<S, R extends { error?: unknown }>(db: DataSource, k: IdempotencyKey | undefined, now: () => Date, steps: KeyedSteps<S, R>): Promise<R> {
  if (k) {
    const kept = await lookup<S>(db, k);
    if (kept) return (await answerKept(kept, steps.replay)) as R;
  }
  const early = await steps.prepare?.();
  if (early) return early;
  let fresh: S | typeof TAKEN;
  try {
    fresh = await transaction<S | typeof TAKEN>(db, async (tx) => {
      const outcome = await steps.work(tx);
      if (k && !(await claim(tx, k, outcome, now()))) throw new Rollback<typeof TAKEN>(TAKEN);
      return outcome;
    });
  } catch (e) {
    if (!(k && steps.duplicateOn?.some((c) => isUniqueViolation(e, c)))) throw e;
    fresh = TAKEN;
  }
  if (fresh !== TAKEN) return steps.answer(fresh);
  const kept = await lookup<S>(db, k!);
  // No record, yet what the key names exists: the key was used before the replay window (its
  // record is gone) — a new request needs a new key.
  if (!kept) return { error: keyExpiredError() } as R;
  return (await answerKept(kept, steps.replay)) as R;
}
