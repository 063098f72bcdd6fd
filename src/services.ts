/** The services of one server instance, built once and shared by every request. */
import type { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import type { Clock } from './common/clock';
import type { Config } from './config';
import type { EventBus } from './common/events/event-bus';
import type { Metrics } from './common/metrics/metrics';
import { AccountService } from './modules/accounts/account.service';
import { CatalogService } from './modules/catalog/catalog.service';
import { AdjustmentService } from './modules/ledger/adjustment.service';
import { LedgerService } from './modules/ledger/ledger.service';
import { GenerationService } from './modules/generations/generation.service';
import { JobRunners } from './modules/generations/job-runners';
import { WorkerService } from './modules/generations/worker.service';
import { PriceBookService } from './modules/quotes/price-book.service';
import { QuoteService } from './modules/quotes/quote.service';
import { NotificationService } from './modules/notifications/notification.service';
import { BillingService } from './modules/billing/billing.service';
import type { PaymentProvider } from './modules/billing/payment-provider';
import { PaymentEvents } from './modules/billing/payment-events';
import { PaymentIntents } from './modules/billing/payment-intents';
import { PlanLifecycle } from './modules/billing/plans/plan-lifecycle';
import { PlanStore } from './modules/billing/plans/plan-store';
import { PlanSweep } from './modules/billing/plans/plan-sweep';
import { SandboxProvider } from './modules/billing/sandbox-provider';
import { StripeProvider } from './modules/billing/stripe-provider';
import { AutoTopUpService } from './modules/billing/auto-top-up/auto-top-up.service';
import { WorkspaceService } from './modules/workspaces/workspace.service';
import { TestClockService } from './modules/clock/test-clock.service';
import { AccountQueue } from './common/limits/account-queue';
import { RateLimits } from './common/limits/rate-limits';
import { Retention } from './common/db/retention';
import { ExpiryService } from './modules/ledger/expiry.service';
import { RefundService } from './modules/refunds/refund.service';
import { ReversalService } from './modules/refunds/reversal.service';

export interface Services {
  config: Config;
  db: DataSource;
  clock: Clock;
  log: Logger;
  events: EventBus;
  /** This instance's metrics (GET /metrics). */
  metrics: Metrics;
  catalog: CatalogService;
  ledger: LedgerService;
  accounts: AccountService;
  adjustments: AdjustmentService;
  priceBooks: PriceBookService;
  quotes: QuoteService;
  generations: GenerationService;
  workers: WorkerService;
  runners: JobRunners;
  notifications: NotificationService;
  payments: PaymentProvider;
  billing: BillingService;
  refunds: RefundService;
  /** Money reversed at the provider (a refund made there, a dispute). */
  reversals: ReversalService;
  /** Payment provider calls as intents, and their reconciler. */
  intents: PaymentIntents;
  /** What the payment provider tells (webhooks, the sandbox's own renewals). */
  paymentEvents: PaymentEvents;
  plans: PlanLifecycle;
  /** Shared credit pools and their members. */
  workspaces: WorkspaceService;
  /** Packs bought by themselves when the balance falls below a level. */
  autoTopUps: AutoTopUpService;
  planSweep: PlanSweep;
  expiries: ExpiryService;
  testClock: TestClockService;
  /** Mutations of one account, one at a time on this instance (common/limits/account-queue.ts). */
  accountQueue: AccountQueue;
  /** Rate limits per account and client address, shared by the instances (common/limits/rate-limits.ts). */
  rateLimits: RateLimits;
  /** The periodic work that falls due with time: renewals and plan months, lot expiries, open payment intents. */
  dueWork(): Promise<void>;
}

export function createServices(deps: { config: Config; db: DataSource; clock: Clock; log: Logger; events: EventBus; metrics: Metrics }): Services {
  const { db, clock, config, log, events, metrics } = deps;
  const catalog = new CatalogService(db);
  const ledger = new LedgerService(db, clock);
  const accounts = new AccountService(db, clock, catalog, ledger);
  const adjustments = new AdjustmentService(db, clock, ledger);
  const priceBooks = new PriceBookService(db, clock, events);
  const quotes = new QuoteService(db, clock, catalog, priceBooks, config.quoteTtlSeconds);
  const generations = new GenerationService(db, clock, catalog, quotes, ledger, config.startConcurrency, config.startBatchMax, metrics);
  const workers = new WorkerService(db, clock, ledger, config.jobLeaseSeconds, log);
  const runners = new JobRunners(workers, log, {
    simulatedWorker: config.simulatedWorker,
    simulatedWorkers: config.simulatedWorkerConcurrency,
    stepMs: config.simulatedWorkerStepMs,
    sweepIntervalMs: config.jobSweepIntervalMs,
    metrics,
    dueWork: () => dueWork(),
  });
  events.onEvent((e) => {
    if (e.type === 'job' && e.status === 'QUEUED') runners.nudge();
  });
  const notifications = new NotificationService(db, clock);
  const payments: PaymentProvider = config.stripe ? new StripeProvider(config.stripe) : new SandboxProvider(db, clock);
  const intents = new PaymentIntents(db, clock, log, config.intentReconcileAfterSeconds * 1000, config.faultKillAt);
  const billing = new BillingService(db, clock, catalog, ledger, payments, intents);
  const planStore = new PlanStore(clock, ledger, intents, payments.name);
  const plans = new PlanLifecycle(db, clock, catalog, planStore, intents, payments, log);
  const refunds = new RefundService(db, clock, catalog, plans, intents, payments, log);
  const reversals = new ReversalService(clock, ledger, plans, payments.name);
  const paymentEvents = new PaymentEvents(db, clock, catalog, plans, billing, intents, payments.name, reversals);
  const planSweep = new PlanSweep(db, clock, catalog, planStore, intents, payments, (e) => paymentEvents.apply(e), log);
  accounts.freeMonth = (tx, accountId, free, start) => plans.freeMonth(tx, accountId, free, start);
  const autoTopUps = new AutoTopUpService(db, clock, catalog, billing, intents, log);
  // A fall below the level was committed: every instance is told, one claims it.
  events.onEvent((e) => {
    if (e.type === 'autoTopUp') autoTopUps.drive(e.accountId).catch((err) => log.error({ err, account: e.accountId }, 'auto top-up failed to run'));
  });
  // Falls told while the listener was away: claimed when it is back, not at the next sweep.
  events.onReconnect(() => void autoTopUps.sweep().catch((err) => log.error({ err }, 'auto top-up sweep after a reconnect failed')));
  generations.buyFirst = (accountId, credits) => autoTopUps.buyForStart(accountId, credits);
  const workspaces = new WorkspaceService(db, clock, catalog, accounts);
  events.onEvent((e) => {
    if (e.type === 'membership') workspaces.forget(e.accountId, e.member);
  });
  const expiries = new ExpiryService(db, clock);
  const testClock = new TestClockService(db, clock, events, log);
  const retention = new Retention(db, clock, { idempotencyHours: config.idempotencyRetentionHours, quoteHours: config.quoteRetentionHours });
  async function dueWork(): Promise<void> {
    // Independent: a failing renewal does not hold back expiries.
    await metrics.sweep('renewals', () => planSweep.renewDue()).catch((e) => log.error({ err: e }, 'renewals failed'));
    await metrics.sweep('expiries', () => expiries.expireDue()).catch((e) => log.error({ err: e }, 'expiries failed'));
    await metrics.sweep('expiryWarnings', () => expiries.warnDue()).catch((e) => log.error({ err: e }, 'expiry warnings failed'));
    await metrics.sweep('autoTopUps', () => autoTopUps.sweep()).catch((e) => log.error({ err: e }, 'auto top-up sweep failed'));
    await metrics.sweep('intents', () => intents.reconcile()).catch((e) => log.error({ err: e }, 'payment intent reconciliation failed'));
    await metrics.sweep('retention', () => retention.sweep()).catch((e) => log.error({ err: e }, 'retention sweep failed'));
  }
  return {
    ...deps, catalog, ledger, accounts, adjustments, priceBooks, quotes, generations, workers, runners, notifications, payments, billing,
    refunds, reversals, intents, paymentEvents, plans, autoTopUps, workspaces, planSweep, expiries, testClock, dueWork,
    accountQueue: new AccountQueue(deps.config.accountQueueMax),
    rateLimits: new RateLimits(db, config.rateLimits, log),
  };
}
