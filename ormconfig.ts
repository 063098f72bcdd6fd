/**
 * The one DataSource definition, used by the app, the TypeORM CLI and the tests.
 * The app calls createDataSource() with the URL it resolved (embedded or DATABASE_URL);
 * the CLI uses the default export, which reads DATABASE_URL.
 *
 * Entities are read models of the tables the code reads through TypeORM repositories (the
 * catalog, accounts, lots, quotes), each with every column of its table (test/entities.test.ts);
 * writes are SQL — the ledger's functions in db/functions and the services' statements — and
 * the schema comes from the migrations only (synchronize is never on). No entity is kept that
 * nothing reads; other tables are read with SQL into row types (e.g. JobRow, PurchaseRow).
 */
import 'reflect-metadata';
import path from 'node:path';
import { DataSource } from 'typeorm';
import { AccountEntity } from './src/modules/accounts/account.entity';
import { CreditPackEntity } from './src/modules/catalog/credit-pack.entity';
import { GenerationModelEntity } from './src/modules/catalog/generation-model.entity';
import { TierEntity } from './src/modules/catalog/tier.entity';
import { CreditLotEntity } from './src/modules/ledger/credit-lot.entity';
import { QuoteEntity } from './src/modules/quotes/quote.entity';

export const entities = [
  TierEntity,
  CreditPackEntity,
  GenerationModelEntity,
  AccountEntity,
  CreditLotEntity,
  QuoteEntity,
];

/** Per-connection limits: how long a statement may wait for a row lock, and run at all (0: none). */
export interface SessionTimeouts {
  lockTimeoutMs: number;
  statementTimeoutMs: number;
}

export function createDataSource(url: string, poolSize = 20, applicationName = 'credits-service', timeouts?: SessionTimeouts): DataSource {
  return new DataSource({
    type: 'postgres',
    url,
    entities,
    migrations: [path.join(__dirname, 'migrations', '*.{ts,js}')],
    migrationsTableName: 'schema_migrations',
    migrationsRun: false,
    synchronize: false,
    logging: false,
    extra: {
      max: poolSize,
      application_name: applicationName,
      connectionTimeoutMillis: 5000,
      idleTimeoutMillis: 30000,
      // Set for the session at connect (no round trip per transaction): no statement waits on
      // an account row, or runs, without bound.
      ...(timeouts ? { options: `-c lock_timeout=${timeouts.lockTimeoutMs} -c statement_timeout=${timeouts.statementTimeoutMs}` } : {}),
    },
  });
}

export default createDataSource(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/credits');
