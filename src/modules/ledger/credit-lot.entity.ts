import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { LotSource } from './ledger.enums';

@Entity('credit_lots')
export class CreditLotEntity {
  @PrimaryGeneratedColumn('uuid') id: string;
  @Column({ name: 'account_id', type: 'text' }) accountId: string;
  @Column({ type: 'text' }) source: LotSource;
  @Column({ type: 'int' }) granted: number;
  @Column({ type: 'int' }) remaining: number;
  @Column({ name: 'expires_at', type: 'timestamptz', nullable: true }) expiresAt: Date | null;
  @Column({ name: 'purchase_id', type: 'uuid', nullable: true }) purchaseId: string | null;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
}
