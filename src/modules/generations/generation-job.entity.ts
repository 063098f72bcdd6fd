import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { QueueClass } from '../catalog/catalog.enums';
import type { CostClass } from '../quotes/cost-class.enum';
import type { NormalizedSettings } from '../quotes/generation-settings';
import type { JobStatus } from './job-status.enum';

@Entity('generation_jobs')
export class GenerationJobEntity {
  @PrimaryColumn({ type: 'uuid' }) id: string;
  @Column({ name: 'account_id', type: 'text' }) accountId: string;
  @Column({ type: 'text' }) status: JobStatus;
  @Column({ type: 'text' }) type: 'IMAGE' | 'VIDEO';
  @Column({ type: 'jsonb' }) settings: NormalizedSettings;
  @Column({ type: 'text' }) prompt: string;
  @Column({ name: 'cost_class', type: 'text' }) costClass: CostClass;
  @Column({ type: 'int' }) credits: number;
  @Column({ name: 'price_book_version', type: 'int' }) priceBookVersion: number;
  @Column({ name: 'quote_id', type: 'uuid', nullable: true }) quoteId: string | null;
  @Column({ name: 'queue_class', type: 'text' }) queueClass: QueueClass;
  @Column({ name: 'queue_rank', type: 'int' }) queueRank: number;
  @Column({ type: 'int' }) progress: number;
  @Column({ name: 'worker_id', type: 'text', nullable: true }) workerId: string | null;
  @Column({ name: 'result_urls', type: 'text', array: true }) resultUrls: string[];
  @Column({ name: 'failure_reason', type: 'text', nullable: true }) failureReason: string | null;
  @Column({ type: 'boolean' }) refunded: boolean;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
  @Column({ name: 'started_at', type: 'timestamptz', nullable: true }) startedAt: Date | null;
  @Column({ name: 'finished_at', type: 'timestamptz', nullable: true }) finishedAt: Date | null;
  @Column({ name: 'last_report_at', type: 'timestamptz', nullable: true }) lastReportAt: Date | null;
}
