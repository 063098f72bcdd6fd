/**
 * Mutations of one account run one at a time on an instance and wait their turn in memory, so
 * an account whose row is held (a slow provider answer, a lock elsewhere) keeps at most one pool
 * connection waiting instead of all of them: other accounts' requests still find connections.
 * At most `maxWaiting` wait per account; beyond that the request is refused with RATE_LIMITED.
 * Generation starts are not queued here: their batcher already keeps an account out of two
 * batches at once and gathers what waits.
 */
import { defaultFieldResolver, type GraphQLSchema } from 'graphql';
import { rateLimited } from './rate-limits';
import { Role } from '../auth/role.enum';
import type { Context } from '../../context';

interface Lane {
  waiting: (() => void)[];
}

export class AccountQueue {
  private readonly lanes = new Map<string, Lane>();

  constructor(private readonly maxWaiting: number) {}

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { waiting: [] };
      this.lanes.set(key, lane);
    } else {
      if (lane.waiting.length >= this.maxWaiting) {
        throw rateLimited(`More than ${this.maxWaiting} changes to this account are waiting`, 1000);
      }
      await new Promise<void>((resolve) => lane!.waiting.push(resolve));
    }
    try {
      return await fn();
    } finally {
      const next = lane.waiting.shift();
      if (next) next();
      else this.lanes.delete(key);
    }
  }

  /** Changes of `key` waiting for their turn (tests and metrics). */
  waitingFor(key: string): number {
    return this.lanes.get(key)?.waiting.length ?? 0;
  }

  /** Accounts with a mutation running (tests and metrics). */
  get size(): number {
    return this.lanes.size;
  }
}

/** Root mutations that are not one account's change: the worker protocol, starts (batched), the test clock. */
const NOT_QUEUED = new Set(['startGeneration', 'advanceTestClock', 'publishPriceBook', 'claimGenerationJob', 'reportGenerationProgress', 'completeGenerationJob', 'failGenerationJob', 'acknowledgeGenerationCancel']);

/** The account a root mutation changes: an admin's adjustment names it; otherwise the caller's own. */
function accountOf(ctx: Context, args: Record<string, unknown>): string | undefined {
  if (!ctx.identity) return undefined;
  if (ctx.identity.role === Role.ADMIN) {
    const input = args.input as { accountId?: unknown } | undefined;
    return typeof input?.accountId === 'string' ? input.accountId : undefined;
  }
  return ctx.identity.role === Role.USER ? ctx.identity.sub : undefined;
}

/**
 * Routes each root mutation of an account through that account's lane: the Mutation type's
 * resolvers are wrapped once, when the schema is built, so queries and nested fields pay nothing.
 */
export function queueMutationsPerAccount(schema: GraphQLSchema): GraphQLSchema {
  for (const field of Object.values(schema.getMutationType()?.getFields() ?? {})) {
    const resolve = field.resolve ?? defaultFieldResolver;
    if (NOT_QUEUED.has(field.name)) continue;
    field.resolve = (source, args, ctx: Context, info) => {
      const account = accountOf(ctx, args);
      return account === undefined ? resolve(source, args, ctx, info) : ctx.services.accountQueue.run(account, async () => resolve(source, args, ctx, info));
    };
  }
  return schema;
}
