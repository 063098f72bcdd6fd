import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { CostClass } from './cost-class.enum';
import type { NormalizedSettings } from './generation-settings';
import type { CostLineValue } from './price-rules';

@Entity('quotes')
export class QuoteEntity {
  @PrimaryColumn({ type: 'uuid' }) id: string;
  @Column({ name: 'account_id', type: 'text' }) accountId: string;
  @Column({ type: 'jsonb' }) settings: NormalizedSettings;
  @Column({ name: 'settings_key', type: 'text' }) settingsKey: string;
  @Column({ name: 'price_book_version', type: 'int' }) priceBookVersion: number;
  @Column({ type: 'int' }) credits: number;
  @Column({ name: 'cost_class', type: 'text' }) costClass: CostClass;
  @Column({ type: 'jsonb' }) breakdown: CostLineValue[];
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
  @Column({ name: 'expires_at', type: 'timestamptz' }) expiresAt: Date;
}
