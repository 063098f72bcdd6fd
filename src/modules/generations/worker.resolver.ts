import { Arg, Authorized, Ctx, ID, Int, Mutation, Resolver } from 'type-graphql';
import { Role } from '../../common/auth/role.enum';
import { callerId, type Context } from '../../context';
import { GenerationJob } from './generation-job.type';

/** The worker protocol; the worker's identity is its token subject. */
@Resolver()
export class WorkerResolver {
  @Authorized(Role.WORKER)
  @Mutation(_returns => GenerationJob, { nullable: true, description: 'Worker: the next QUEUED job by queue class then age, now RUNNING for you; null when none.' })
  async claimGenerationJob(@Ctx() ctx: Context): Promise<GenerationJob | null> {
    const job = await ctx.services.workers.claim(callerId(ctx));
    return job ? GenerationJob.fromRow(job) : null;
  }

  @Authorized(Role.WORKER)
  @Mutation(_returns => GenerationJob, { description: 'Worker: progress 0-100 of a job you claimed; never backwards. Also renews the lease.' })
  async reportGenerationProgress(
    @Arg('jobId', _type => ID) jobId: string,
    @Arg('progress', _type => Int) progress: number,
    @Ctx() ctx: Context,
  ): Promise<GenerationJob> {
    return GenerationJob.fromRow(await ctx.services.workers.progress(callerId(ctx), jobId, progress));
  }

  @Authorized(Role.WORKER)
  @Mutation(_returns => GenerationJob, { description: 'Worker: the job succeeded with these result URLs (up to 16).' })
  async completeGenerationJob(
    @Arg('jobId', _type => ID) jobId: string,
    @Arg('resultUrls', _type => [String]) resultUrls: string[],
    @Ctx() ctx: Context,
  ): Promise<GenerationJob> {
    return GenerationJob.fromRow(await ctx.services.workers.complete(callerId(ctx), jobId, resultUrls));
  }

  @Authorized(Role.WORKER)
  @Mutation(_returns => GenerationJob, { description: 'Worker: you stopped a job whose owner asked to stop it (cancelRequested): CANCELED, and its unrendered share, floor(credits × (100 − progress) / 100), goes back.' })
  async acknowledgeGenerationCancel(@Arg('jobId', _type => ID) jobId: string, @Ctx() ctx: Context): Promise<GenerationJob> {
    return GenerationJob.fromRow(await ctx.services.workers.acknowledgeCancel(callerId(ctx), jobId));
  }

  @Authorized(Role.WORKER)
  @Mutation(_returns => GenerationJob, { description: "Worker: the job failed; its credits go back to the user, once (a job asked to stop ends CANCELED with its unrendered share back)." })
  async failGenerationJob(@Arg('jobId', _type => ID) jobId: string, @Arg('reason', _type => String) reason: string, @Ctx() ctx: Context): Promise<GenerationJob> {
    return GenerationJob.fromRow(await ctx.services.workers.fail(callerId(ctx), jobId, reason));
  }
}
