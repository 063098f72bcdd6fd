import { Column, Entity, PrimaryColumn } from 'typeorm';
import { LedgerEntryKind } from './ledger.enums';

/** Immutable: the database refuses UPDATE, DELETE and TRUNCATE on this table. */
@Entity('ledger_entries')
export class LedgerEntryEntity {
  @PrimaryColumn({ type: 'bigint' }) id: string;
  @Column({ name: 'account_id', type: 'text' }) accountId: string;
  @Column({ type: 'text' }) kind: LedgerEntryKind;
  @Column({ type: 'int' }) amount: number;
  @Column({ name: 'balance_after', type: 'int' }) balanceAfter: number;
  @Column({ type: 'text' }) description: string;
  @Column({ name: 'lot_id', type: 'uuid', nullable: true }) lotId: string | null;
  @Column({ name: 'job_id', type: 'uuid', nullable: true }) jobId: string | null;
  @Column({ name: 'purchase_id', type: 'uuid', nullable: true }) purchaseId: string | null;
  @Column({ name: 'idempotency_key', type: 'text', nullable: true }) idempotencyKey: string | null;
  @Column({ type: 'text', nullable: true }) actor: string | null;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
}
