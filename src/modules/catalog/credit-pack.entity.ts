import { Column, Entity, PrimaryColumn } from 'typeorm';

@Entity('credit_packs')
export class CreditPackEntity {
  @PrimaryColumn({ type: 'text' }) code: string;
  @Column({ type: 'text' }) name: string;
  @Column({ type: 'int' }) credits: number;
  @Column({ name: 'price_cents', type: 'int' }) priceCents: number;
  @Column({ type: 'char', length: 3 }) currency: string;
  @Column({ name: 'sort_order', type: 'int' }) sortOrder: number;
  @Column({ type: 'boolean' }) active: boolean;
}
