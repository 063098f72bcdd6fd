/**
 * Shared by the debit-storm and idempotency tests: a seeded random source, a bounded pool of
 * concurrent tasks, the operations they send, and a caller that sends them over the real HTTP
 * API with a token signed once and fails loudly on any transport or GraphQL error.
 */
import { Role } from '../../src/common/auth/role.enum';
import type { TestApp } from '../helpers/test-app';

/** A small seeded generator (xorshift32): the same seed gives the same sequence of choices. */
export class Random {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  /** A float in [0, 1). */
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s / 2 ** 32;
  }
  /** A whole number in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** Runs the tasks with at most `concurrency` at a time; resolves when all are done. */
export async function pool<T>(tasks: (() => Promise<T>)[], concurrency: number): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(concurrency, tasks.length) }, async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]();
    }
  });
  await Promise.all(lanes);
  return results;
}

export interface UserError {
  code: string;
  message: string;
}

/** A caller of the real HTTP API: one token, every answer checked for transport and GraphQL errors. */
export class Caller {
  private constructor(
    private readonly app: TestApp,
    readonly sub: string,
    private readonly token: string,
  ) {}

  static async as(app: TestApp, sub: string, role: Role = Role.USER): Promise<Caller> {
    return new Caller(app, sub, await app.token(sub, role, 24 * 3600));
  }

  async send<T>(query: string, variables?: Record<string, unknown>): Promise<T> {
    const res = await this.app.raw<T>(query, variables, { token: this.token });
    if (res.status !== 200 || res.errors?.length || !res.data) {
      throw new Error(`${this.sub}: HTTP ${res.status} ${JSON.stringify(res.errors ?? res.data)} for ${query.slice(0, 80)}`);
    }
    return res.data;
  }
}

export const OPS = {
  me: `{ me { id balance { available } } }`,
  start: `mutation ($input: StartGenerationInput!) {
    startGeneration(input: $input) {
      job { id credits status } quote { id credits } balance { available } topUpOptions { code } userErrors { code message }
    }
  }`,
  cancel: `mutation ($jobId: ID!) {
    cancelGeneration(jobId: $jobId) { job { id status refunded credits } balance { available } userErrors { code message } }
  }`,
  claim: `mutation { claimGenerationJob { id credits status } }`,
  complete: `mutation ($jobId: ID!) { completeGenerationJob(jobId: $jobId, resultUrls: ["https://cdn.example/r.png"]) { id status refunded } }`,
  fail: `mutation ($jobId: ID!) { failGenerationJob(jobId: $jobId, reason: "GPU fell over") { id status refunded credits } }`,
  buy: `mutation ($input: PurchaseCreditPackInput!) {
    purchaseCreditPack(input: $input) { purchase { id kind status packCode credits } balance { available } userErrors { code message } }
  }`,
  refund: `mutation ($input: RequestRefundInput!) {
    requestRefund(input: $input) { refundRequest { id status creditsRevoked purchase { id } } userErrors { code message } }
  }`,
  review: `mutation ($input: ReviewRefundInput!) {
    reviewRefundRequest(input: $input) { refundRequest { id status creditsRevoked purchase { id } } userErrors { code message } }
  }`,
  toReview: `{ refundRequestsToReview(first: 100) { edges { node { id purchase { id } } } } }`,
  changePlan: `mutation ($input: ChangePlanInput!) {
    changePlan(input: $input) {
      plan { tier { code } interval status cancelAtPeriodEnd } purchase { id kind status tier interval credits amountCents }
      balance { available } userErrors { code message }
    }
  }`,
  cancelPlan: `mutation { cancelPlan { plan { tier { code } cancelAtPeriodEnd } userErrors { code message } } }`,
  adjust: `mutation ($input: AdjustCreditsInput!) {
    adjustCredits(input: $input) { entry { id amount balanceAfter } balance { available } userErrors { code message } }
  }`,
  advance: `mutation ($hours: Float!) { advanceTestClock(hours: $hours) }`,
} as const;

export interface StartResult {
  startGeneration: {
    job: { id: string; credits: number; status: string } | null;
    balance: { available: number } | null;
    topUpOptions: { code: string }[];
    userErrors: UserError[];
  };
}

/** Settings every tier may use, with their price in the launch price book. */
export const FREE_SETTINGS: { settings: Record<string, unknown>; credits: number }[] = [
  { settings: { type: 'IMAGE', imageQuality: 'STANDARD' }, credits: 1 },
  { settings: { type: 'IMAGE', imageQuality: 'STANDARD', count: 2 }, credits: 2 },
  { settings: { type: 'IMAGE', imageQuality: 'HIGH' }, credits: 3 },
  { settings: { type: 'IMAGE', imageQuality: 'STANDARD', count: 4 }, credits: 4 },
  { settings: { type: 'VIDEO', durationSeconds: 1 }, credits: 5 },
  { settings: { type: 'IMAGE', imageQuality: 'HIGH', count: 2 }, credits: 6 },
  { settings: { type: 'VIDEO', durationSeconds: 5 }, credits: 9 },
];

export const PACKS: Record<string, number> = { STARTER: 50, CREATOR: 200, PRO: 500 };

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
