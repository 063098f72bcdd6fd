import { Column, Entity, PrimaryColumn } from 'typeorm';
import { Feature, QueueClass, TierCode } from './catalog.enums';

@Entity('tiers')
export class TierEntity {
  @PrimaryColumn({ type: 'text' }) code: TierCode;
  @Column({ type: 'text' }) name: string;
  @Column({ type: 'int' }) rank: number;
  @Column({ name: 'monthly_credits', type: 'int' }) monthlyCredits: number;
  @Column({ name: 'signup_credits', type: 'int' }) signupCredits: number;
  @Column({ name: 'monthly_price_cents', type: 'int' }) monthlyPriceCents: number;
  @Column({ name: 'annual_price_cents', type: 'int' }) annualPriceCents: number;
  @Column({ type: 'char', length: 3 }) currency: string;
  @Column({ name: 'queue_class', type: 'text' }) queueClass: QueueClass;
  @Column({ type: 'text', array: true }) features: Feature[];
  @Column({ name: 'max_resolution', type: 'int' }) maxResolution: number;
  @Column({ name: 'character_model_slots', type: 'int' }) characterModelSlots: number;
  @Column({ name: 'default_low_credit_threshold', type: 'int' }) defaultLowCreditThreshold: number;
  @Column({ name: 'rollover_months', type: 'int' }) rolloverMonths: number;
}
