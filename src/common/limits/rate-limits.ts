/**
 * Rate limits per account and per client address, shared by every instance through one
 * PostgreSQL table (rate-limiter-flexible's RateLimiterPostgres: one atomic upsert per counter
 * and window, fixed windows). Instances take points from the shared counter in leases: the first
 * change of a window takes exactly one point; later ones take one plus up to a tenth of what the
 * window has left (at most LEASE_MAX) and spend the rest locally, so a busy account costs the
 * database one upsert per lease, not one per mutation. A lease is never more than the window has
 * left: together the instances never grant more than the limit; at a window's end at most one
 * lease per instance and key may go unused (they grant less, never more). A refusal is kept
 * locally until the window ends. When the store fails, an in-memory limiter of the same limit
 * stands in for it on this instance (rate-limiter-flexible's insurance limiter).
 */
import { defaultFieldResolver, GraphQLError, type GraphQLSchema } from 'graphql';
import { RateLimiterMemory, RateLimiterPostgres, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';
import type { Context } from '../../context';
import { Role } from '../auth/role.enum';

/** The most points one instance takes from a shared counter at once. */
export const LEASE_MAX = 50;
/** Local entries kept before expired ones are pruned. */
const PRUNE_AT = 10_000;

interface Lease {
  /** Points granted to this instance and not yet spent. */
  left: number;
  /** Real-time ms when the counter's window ends. */
  until: number;
  /** Points the next lease asks for. */
  next: number;
  refused: boolean;
  fetching?: Promise<void>;
}

/** One limit (points per window) over a shared counter, spent in leases. */
export class LeasedLimiter {
  private readonly leases = new Map<string, Lease>();

  constructor(
    private readonly store: RateLimiterAbstract,
    readonly points: number,
    private readonly log: Logger,
  ) {}

  /** Takes one point for `key`: 0 when granted, else the ms until the window ends. */
  async take(key: string): Promise<number> {
    for (;;) {
      const now = Date.now();
      let lease = this.leases.get(key);
      if (lease && lease.until <= now && !lease.fetching) {
        this.leases.delete(key);
        lease = undefined;
      }
      if (lease && lease.left > 0) {
        lease.left -= 1;
        return 0;
      }
      if (lease?.refused) return lease.until - now;
      if (lease?.fetching) {
        await lease.fetching;
        continue;
      }
      if (!lease) {
        if (this.leases.size >= PRUNE_AT) this.prune(now);
        lease = { left: 0, until: 0, next: 1, refused: false };
        this.leases.set(key, lease);
      }
      const l = lease;
      l.fetching = this.lease(key, l).finally(() => (l.fetching = undefined));
      await l.fetching;
    }
  }

  private async lease(key: string, lease: Lease): Promise<void> {
    const asked = lease.next;
    let res: RateLimiterRes;
    try {
      res = await this.store.consume(key, asked);
    } catch (e) {
      if (!(e instanceof RateLimiterRes)) {
        // Neither the store nor the insurance limiter answered: let this change through.
        this.log.error({ err: e, key }, 'rate limiter failed: allowing');
        lease.left += 1;
        lease.until = Date.now() + 1000;
        return;
      }
      res = e;
    }
    // The counter went from consumed − asked to consumed: what of that lies under the limit is ours.
    const granted = Math.max(0, Math.min(asked, this.points - (res.consumedPoints - asked)));
    lease.until = Date.now() + Math.max(res.msBeforeNext, 1);
    lease.left += granted;
    lease.refused = granted === 0;
    lease.next = Math.min(LEASE_MAX, Math.max(1, Math.floor(res.remainingPoints / 10)));
  }

  private prune(now: number): void {
    for (const [key, lease] of this.leases) if (lease.until <= now && !lease.fetching) this.leases.delete(key);
  }

  /** Points of `key` granted to this instance and not yet spent in the current window (tests and metrics). */
  unspent(key: string): number {
    const lease = this.leases.get(key);
    return lease && lease.until > Date.now() ? lease.left : 0;
  }
}

export interface RateLimitSettings {
  windowSeconds: number;
  accountMutations: number;
  addressMutations: number;
  accountSubscribes: number;
  addressSubscribes: number;
  /** Cancellations of queued jobs per account per day (each writes a debit and a refund that stay). */
  accountCancelsPerDay: number;
}

/** What a limited action is and who it is counted against. */
export interface Caller {
  /** The token's subject; undefined for unauthenticated callers. */
  account?: string;
  /** The client address (see client-address.ts); undefined when unknown. */
  address?: string;
}

type Kind = 'mutation' | 'subscribe' | 'cancel';

export class RateLimits {
  private readonly limiters: { kind: Kind; by: keyof Caller; limiter: LeasedLimiter; what: string }[] = [];

  constructor(db: DataSource, settings: RateLimitSettings, log: Logger) {
    const add = (kind: Kind, by: keyof Caller, points: number, windowSeconds: number, what: string) => {
      if (points <= 0) return; // 0 turns the limit off
      const keyPrefix = `${kind}:${by}`;
      const store = new RateLimiterPostgres({
        storeClient: db,
        storeType: 'typeorm',
        tableName: 'rate_limits',
        tableCreated: true, // a migration creates it; the runtime role may not
        keyPrefix,
        points,
        duration: windowSeconds,
        insuranceLimiter: new RateLimiterMemory({ keyPrefix, points, duration: windowSeconds }),
      });
      this.limiters.push({ kind, by, limiter: new LeasedLimiter(store, points, log), what });
    };
    const w = settings.windowSeconds;
    add('mutation', 'account', settings.accountMutations, w, `${settings.accountMutations} changes per ${w} s for this account`);
    add('mutation', 'address', settings.addressMutations, w, `${settings.addressMutations} changes per ${w} s from this address`);
    add('subscribe', 'account', settings.accountSubscribes, w, `${settings.accountSubscribes} subscriptions per ${w} s for this account`);
    add('subscribe', 'address', settings.addressSubscribes, w, `${settings.addressSubscribes} subscriptions per ${w} s from this address`);
    add('cancel', 'account', settings.accountCancelsPerDay, 86_400, `${settings.accountCancelsPerDay} cancellations of queued jobs per day for this account`);
  }

  /** Counts one `kind` for the caller; throws RATE_LIMITED (nothing done) when a limit is spent. */
  async take(kind: Kind, caller: Caller): Promise<void> {
    for (const { kind: k, by, limiter, what } of this.limiters) {
      const key = caller[by];
      if (k !== kind || key === undefined) continue;
      const waitMs = await limiter.take(key);
      if (waitMs > 0) throw rateLimited(`Rate limit reached: ${what}`, waitMs);
    }
  }

  /** Points of a limit granted to this instance and not yet spent (tests). */
  unspent(kind: Kind, by: keyof Caller, key: string): number {
    return this.limiters.filter((l) => l.kind === kind && l.by === by).reduce((n, l) => n + l.limiter.unspent(key), 0);
  }
}

export function rateLimited(message: string, waitMs: number): GraphQLError {
  const retryAfterSeconds = Math.max(1, Math.ceil(waitMs / 1000));
  return new GraphQLError(`${message}; retry in ${retryAfterSeconds} s`, { extensions: { code: 'RATE_LIMITED', retryAfterSeconds } });
}

/** Who a request or a subscription is counted against: workers (the GPU fleet, trusted) are not limited. */
export function callerOf(who: Pick<Context, 'identity' | 'address'>): Caller | undefined {
  if (who.identity?.role === Role.WORKER) return undefined;
  return { account: who.identity?.sub, address: who.address };
}

/**
 * Counts every root mutation (aliases each count) against its caller's limits before it runs —
 * before it waits in its account's queue — so a refused one writes nothing. Cancellations also
 * count against the daily cancellation limit. Wrapped once, when the schema is built.
 */
export function limitMutations(schema: GraphQLSchema): GraphQLSchema {
  for (const field of Object.values(schema.getMutationType()?.getFields() ?? {})) {
    const resolve = field.resolve ?? defaultFieldResolver;
    const cancel = field.name === 'cancelGeneration';
    field.resolve = async (source, args, ctx: Context, info) => {
      const caller = callerOf(ctx);
      if (caller) {
        await ctx.services.rateLimits.take('mutation', caller);
        if (cancel) await ctx.services.rateLimits.take('cancel', caller);
      }
      return resolve(source, args, ctx, info);
    };
  }
  return schema;
}
