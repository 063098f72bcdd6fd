import { Field, ID, Int, ObjectType } from 'type-graphql';
import { Connection } from '../../common/relay/connection.type';
import { LedgerEntryKind } from './ledger.enums';

/** A ledger_entries row as SQL returns it. */
export interface LedgerEntryRow {
  id: string;
  kind: LedgerEntryKind;
  amount: number;
  balance_after: number;
  description: string;
  job_id: string | null;
  purchase_id: string | null;
  created_at: Date;
}

@ObjectType({ description: 'One immutable change to a balance.' })
export class LedgerEntry {
  @Field(_type => ID) id: string;
  @Field(_type => LedgerEntryKind) kind: LedgerEntryKind;
  @Field(_type => Int, { description: 'Signed: grants and refunds > 0, debits < 0' }) amount: number;
  @Field(_type => Int) balanceAfter: number;
  @Field(_type => String) description: string;
  @Field(_type => ID, { nullable: true }) jobId: string | null;
  @Field(_type => ID, { nullable: true }) purchaseId: string | null;
  @Field(_type => Date) createdAt: Date;

  static fromRow(r: LedgerEntryRow): LedgerEntry {
    return Object.assign(new LedgerEntry(), {
      id: String(r.id), kind: r.kind, amount: r.amount, balanceAfter: r.balance_after, description: r.description,
      jobId: r.job_id, purchaseId: r.purchase_id, createdAt: r.created_at,
    });
  }
}

@ObjectType()
export class LedgerEntryConnection extends Connection(LedgerEntry) {}
