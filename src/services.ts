/** The services of one server instance, built once and shared by every request. */
import type { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import type { Clock } from './common/clock';
import type { Config } from './config';
import type { EventBus } from './common/events/event-bus';
import { AccountService } from './modules/accounts/account.service';
import { CatalogService } from './modules/catalog/catalog.service';
import { AdjustmentService } from './modules/ledger/adjustment.service';
import { LedgerService } from './modules/ledger/ledger.service';

export interface Services {
  config: Config;
  db: DataSource;
  clock: Clock;
  log: Logger;
  events: EventBus;
  catalog: CatalogService;
  ledger: LedgerService;
  accounts: AccountService;
  adjustments: AdjustmentService;
}

export function createServices(deps: { config: Config; db: DataSource; clock: Clock; log: Logger; events: EventBus }): Services {
  const { db, clock } = deps;
  const catalog = new CatalogService(db);
  const ledger = new LedgerService(db, clock);
  const accounts = new AccountService(db, clock, catalog, ledger);
  const adjustments = new AdjustmentService(db, clock, ledger);
  return { ...deps, catalog, ledger, accounts, adjustments };
}
