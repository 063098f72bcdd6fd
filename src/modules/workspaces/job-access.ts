/**
 * Which jobs a caller may see and stop: their own account's, and those of the workspaces they
 * are a member of (every member sees the pool's jobs). Stopping a workspace job is for whoever
 * started it and for the OWNER and ADMINs; another MEMBER is FORBIDDEN. Anyone else gets what
 * an id that does not exist gets.
 */
import { forbidden } from '../../common/errors/graphql-errors';
import { isUuid } from '../../common/ids';
import { callerId, type Context } from '../../context';
import type { JobRow } from '../generations/generation-job.type';
import { isManager } from './workspace.service';

/** The job, when the caller may see it (`cancel`: and stop it; a MEMBER aiming at another's job throws FORBIDDEN). */
export async function jobFor(ctx: Context, jobId: string, need: 'see' | 'cancel'): Promise<JobRow | undefined> {
  if (!isUuid(jobId)) return undefined;
  const caller = callerId(ctx);
  const [row] = (await ctx.services.db.query(
    `SELECT j.*, m.role AS caller_role FROM generation_jobs j
       LEFT JOIN workspace_members m ON m.workspace_id = j.account_id AND m.account_id = $2
      WHERE j.id = $1 AND (j.account_id = $2 OR m.account_id IS NOT NULL)`,
    [jobId, caller],
  )) as (JobRow & { caller_role: string | null })[];
  if (!row) return undefined;
  const { caller_role: role, ...job } = row;
  if (need === 'cancel' && role && job.started_by !== caller && !isManager(role as never)) {
    throw forbidden('Only who started a workspace job, or the OWNER or an ADMIN, may stop it');
  }
  return job;
}
