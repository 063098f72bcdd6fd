import { registerEnumType } from 'type-graphql';

export enum JobStatus {
  QUEUED = 'QUEUED',
  RUNNING = 'RUNNING',
  SUCCEEDED = 'SUCCEEDED',
  FAILED = 'FAILED',
  CANCELED = 'CANCELED',
}
registerEnumType(JobStatus, { name: 'JobStatus' });

/** Claim order of queue classes: lower rank is claimed first. */
export const QUEUE_RANK_SQL = `CASE %s WHEN 'INSTANT' THEN 0 WHEN 'FAST' THEN 1 WHEN 'PRIORITY' THEN 2 ELSE 3 END`;
