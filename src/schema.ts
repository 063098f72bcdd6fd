import path from 'node:path';
import { createPubSub } from '@graphql-yoga/subscription';
import { DateTimeResolver } from 'graphql-scalars';
import { lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql';
import { buildSchema } from 'type-graphql';
import { authChecker } from './common/auth/auth-checker';
import { validateInput } from './common/errors/validate-input';
import { queueMutationsPerAccount } from './common/limits/account-queue';
import { limitMutations } from './common/limits/rate-limits';
import { AccountResolver } from './modules/accounts/account.resolver';
import { CatalogResolver, CreditPackIdResolver, GenerationModelIdResolver, TierIdResolver } from './modules/catalog/catalog.resolver';
import { AdjustmentResolver } from './modules/ledger/adjustment.resolver';
import { BalanceResolver } from './modules/ledger/balance.resolver';
import { AccountJobsResolver, GenerationResolver, JobQueueResolver } from './modules/generations/generation.resolver';
import { WorkerResolver } from './modules/generations/worker.resolver';
import { QuoteResolver } from './modules/quotes/quote.resolver';
import { AccountNotificationsResolver, NotificationResolver } from './modules/notifications/notification.resolver';
import { AccountPurchasesResolver, BillingResolver, PlanResolver } from './modules/billing/billing.resolver';
import { AccountAutoTopUpResolver, AutoTopUpResolver } from './modules/billing/auto-top-up/auto-top-up.resolver';
import { AccountWorkspacesResolver, WorkspaceResolver } from './modules/workspaces/workspace.resolver';
import { TestClockResolver } from './modules/clock/test-clock.resolver';
import { AccountRefundsResolver, PurchaseRefundResolver, RefundRequestResolver } from './modules/refunds/refund.resolver';

export const resolvers = [
  AccountResolver,
  AccountJobsResolver,
  BalanceResolver,
  AdjustmentResolver,
  CatalogResolver,
  TierIdResolver,
  CreditPackIdResolver,
  GenerationModelIdResolver,
  QuoteResolver,
  GenerationResolver,
  JobQueueResolver,
  WorkerResolver,
  AccountNotificationsResolver,
  NotificationResolver,
  AccountPurchasesResolver,
  BillingResolver,
  PlanResolver,
  AccountAutoTopUpResolver,
  AutoTopUpResolver,
  WorkspaceResolver,
  AccountWorkspacesResolver,
  RefundRequestResolver,
  PurchaseRefundResolver,
  AccountRefundsResolver,
  TestClockResolver,
] as const;

export const SCHEMA_FILE = path.resolve(__dirname, '..', 'schema', 'schema.graphql');

let built: Promise<GraphQLSchema> | undefined;

/**
 * Builds the schema (once per process: type-graphql's metadata is global).
 * Subscriptions read their events from the per-instance event bus in the context, so the
 * pubSub given here only satisfies type-graphql's check.
 */
export function buildAppSchema(): Promise<GraphQLSchema> {
  built ??= buildSchema({
    resolvers,
    authChecker,
    validateFn: validateInput,
    pubSub: createPubSub(),
    scalarsMap: [{ type: Date, scalar: DateTimeResolver }],
  }).then(queueMutationsPerAccount)
    .then(limitMutations); // outermost: counted before it waits in its account's queue
  return built;
}

/** The committed SDL: sorted, so diffs show real changes only. */
export function printAppSchema(schema: GraphQLSchema): string {
  return `# Generated from the code by \`npm run schema\`; do not edit. The contract is docs/API.md.\n\n${printSchema(lexicographicSortSchema(schema))}\n`;
}
