/**
 * The lists a holder of credits shows — a person's account or a workspace's, read by the same
 * queries: its ledger, its purchases, its jobs. Account and Workspace resolve their fields here.
 */
import type { DataSource } from 'typeorm';
import type { ConnectionShape } from '../../common/relay/connection.type';
import { paginate, type PageRequest } from '../../common/relay/paginate';
import { Purchase, type PurchaseRow } from '../billing/purchase.type';
import { GenerationJob, type JobRow } from '../generations/generation-job.type';
import type { JobStatus } from '../generations/job-status.enum';
import { LedgerEntry } from '../ledger/ledger-entry.type';

export function ledgerPage(db: DataSource, accountId: string, page: PageRequest): Promise<ConnectionShape<LedgerEntry>> {
  return paginate(db, { table: 'ledger_entries', where: 'account_id = $1', params: [accountId], page, map: LedgerEntry.fromRow });
}

export function purchasesPage(db: DataSource, accountId: string, page: PageRequest): Promise<ConnectionShape<Purchase>> {
  return paginate<PurchaseRow, Purchase>(db, { table: 'purchases', where: 'account_id = $1', params: [accountId], page, map: Purchase.fromRow });
}

/** Jobs by who paid for them (`account_id`) or who started them (`started_by`), of one status when given. */
export function jobsPage(db: DataSource, by: 'account_id' | 'started_by', id: string, args: PageRequest & { status?: JobStatus | null }): Promise<ConnectionShape<GenerationJob>> {
  return paginate<JobRow & { created_at: Date }, GenerationJob>(db, {
    table: 'generation_jobs',
    where: args.status ? `${by} = $1 AND status = $2` : `${by} = $1`,
    params: args.status ? [id, args.status] : [id],
    page: args,
    map: GenerationJob.fromRow,
  });
}
