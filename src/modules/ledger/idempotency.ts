/**
 * Idempotency records keyed by (caller, key), holding a hash of the input and the first result.
 *
 * The operation runs first; its result is then recorded with INSERT … ON CONFLICT DO NOTHING.
 * A concurrent duplicate blocks on that insert until the first commits, finds the key taken,
 * rolls its own work back and returns the stored result. Same key with other input gives
 * IDEMPOTENCY_KEY_REUSED. Refusals are recorded too, so a replay returns the same refusal.
 */
import { createHash } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { Rollback, transaction, type Tx } from '../../common/db/transaction';
import { UserErrorCode } from '../../common/errors/user-error-code.enum';

export interface IdempotencyOptions {
  scope: string;
  key?: string | null;
  operation: string;
  /** The input that defines "the same request" (without the key itself). */
  input: unknown;
}

export type Replayed<R> = { replayed: true; stored: R } | { replayed: false; stored?: undefined };

export class KeyReused {
  readonly reused = true;
}

/** The userError every operation answers for a key used before with other input. */
export function keyReusedError(): { code: UserErrorCode; message: string; field: string[] } {
  return { code: UserErrorCode.IDEMPOTENCY_KEY_REUSED, message: 'This idempotency key was already used with other input', field: ['input', 'idempotencyKey'] };
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

/**
 * Runs `work` in one transaction under an idempotency key. `work` returns the result to send
 * and the JSON to store. Returns the fresh result, the stored JSON of the first run, or
 * KeyReused when the key was used for other input.
 */
export async function idempotent<T, S>(
  db: DataSource,
  opts: IdempotencyOptions,
  now: () => Date,
  work: (tx: Tx) => Promise<{ result: T; store: S }>,
): Promise<{ fresh: T } | { stored: S } | KeyReused> {
  if (!opts.key) {
    return { fresh: (await transaction(db, work)).result };
  }
  const hash = requestHash(opts.operation, opts.input);
  const outcome = await transaction<{ fresh: T } | 'taken'>(db, async (tx) => {
    const { result, store } = await work(tx);
    const rows: unknown[] = await tx.query(
      `INSERT INTO idempotency_keys (scope, key, operation, request_hash, response, created_at)
       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING 1`,
      [opts.scope, opts.key, opts.operation, hash, JSON.stringify(store ?? null), now()],
    );
    if (rows.length === 0) throw new Rollback<'taken'>('taken');
    return { fresh: result };
  });
  if (outcome !== 'taken') return outcome;
  const stored = await replayOf<S>(db, { scope: opts.scope, key: opts.key, operation: opts.operation, hash });
  return stored instanceof KeyReused ? stored : { stored };
}

/** The record kept under a key, or undefined. */
export async function readRecord<S>(db: DataSource, scope: string, key: string): Promise<{ operation: string; request_hash: string; response: S } | undefined> {
  const [row] = (await db.query(`SELECT operation, request_hash, response FROM idempotency_keys WHERE scope = $1 AND key = $2`, [
    scope,
    key,
  ])) as { operation: string; request_hash: string; response: S }[];
  return row;
}

/**
 * Keeps `response` under the key unless the key is taken; returns the kept response of the
 * first request (this one's when it was first), or KeyReused.
 */
export async function record<S>(db: DataSource, opts: Required<Pick<IdempotencyOptions, 'scope' | 'operation'>> & { key: string; hash: string }, response: S, now: Date): Promise<S | KeyReused> {
  await db.query(
    `INSERT INTO idempotency_keys (scope, key, operation, request_hash, response, created_at)
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
    [opts.scope, opts.key, opts.operation, opts.hash, JSON.stringify(response), now],
  );
  return replayOf<S>(db, opts);
}

/** The first response under the key for this operation and input, or KeyReused. */
export async function replayOf<S>(db: DataSource, opts: { scope: string; key: string; operation: string; hash: string }): Promise<S | KeyReused> {
  const row = await readRecord<S>(db, opts.scope, opts.key);
  if (!row || row.operation !== opts.operation || row.request_hash !== opts.hash) return new KeyReused();
  return row.response;
}
