import { Field, ID, Int, ObjectType } from 'type-graphql';
import { Connection } from '../../common/relay/connection.type';
import { GenerationType, QueueClass } from '../catalog/catalog.enums';
import { CostClass } from '../quotes/cost-class.enum';
import type { NormalizedSettings } from '../quotes/generation-settings';
import { GenerationSettings } from './generation-settings.type';
import { JobStatus } from './job-status.enum';

/** A generation_jobs row as SQL returns it. */
export interface JobRow {
  id: string;
  account_id: string;
  status: JobStatus;
  type: GenerationType;
  prompt: string;
  settings: NormalizedSettings;
  cost_class: CostClass;
  credits: number;
  price_book_version: number;
  quote_id: string | null;
  queue_class: QueueClass;
  queue_rank: number;
  progress: number;
  result_urls: string[];
  failure_reason: string | null;
  refunded: boolean;
  cancel_requested: boolean;
  /** Who started it: the account itself, or the workspace member who did. */
  started_by: string;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

/**
 * What a job stopped while RUNNING gives back: the share it did not render, rounded down —
 * floor(credits × (100 − progress) / 100), progress as the worker last reported it.
 */
export function unrenderedShare(job: Pick<JobRow, 'credits' | 'progress'>): number {
  return Math.floor((job.credits * (100 - job.progress)) / 100);
}

@ObjectType({ description: 'One generation: accepted (credits taken) when QUEUED; runs to its end once RUNNING.' })
export class GenerationJob {
  @Field(_type => ID) id: string;
  /** Not exposed. */
  accountId: string;
  @Field(_type => JobStatus) status: JobStatus;
  @Field(_type => GenerationType) type: GenerationType;
  @Field(_type => String) prompt: string;
  @Field(_type => GenerationSettings) settings: GenerationSettings;
  @Field(_type => CostClass) costClass: CostClass;
  @Field(_type => Int, { description: 'Credits taken when it was accepted' }) credits: number;
  @Field(_type => Int) priceBookVersion: number;
  @Field(_type => ID, { nullable: true }) quoteId: string | null;
  @Field(_type => QueueClass) queueClass: QueueClass;
  /** Not exposed: the claim order of its class (queuePosition). */
  queueRank: number;
  @Field(_type => Int, { description: '0 to 100' }) progress: number;
  @Field(_type => [String]) resultUrls: string[];
  @Field(_type => String, { nullable: true }) failureReason: string | null;
  @Field(_type => Boolean, { description: 'Credits were given back: all of them (FAILED, or CANCELED while QUEUED) or the unrendered share (CANCELED while RUNNING)' }) refunded: boolean;
  @Field(_type => Boolean, { description: 'Its owner asked the worker to stop it (cancelGeneration while RUNNING)' }) cancelRequested: boolean;
  @Field(_type => ID, { description: 'Who started it: the account itself, or the workspace member who did' }) startedBy: string;
  @Field(_type => Date) createdAt: Date;
  @Field(_type => Date, { nullable: true }) startedAt: Date | null;
  @Field(_type => Date, { nullable: true }) finishedAt: Date | null;

  static fromRow(r: JobRow): GenerationJob {
    return Object.assign(new GenerationJob(), {
      id: r.id, accountId: r.account_id, status: r.status, type: r.type, prompt: r.prompt, settings: GenerationSettings.of(r.settings), costClass: r.cost_class,
      credits: r.credits, priceBookVersion: r.price_book_version, quoteId: r.quote_id, queueClass: r.queue_class, queueRank: r.queue_rank,
      progress: r.progress, resultUrls: r.result_urls, failureReason: r.failure_reason, refunded: r.refunded, cancelRequested: r.cancel_requested,
      createdAt: r.created_at, startedAt: r.started_at, finishedAt: r.finished_at,
      startedBy: r.started_by,
    });
  }
}

@ObjectType()
export class GenerationJobConnection extends Connection(GenerationJob) {}
