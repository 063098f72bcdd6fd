import { Arg, Args, ArgsType, Authorized, Ctx, Field, FieldResolver, ID, Int, Mutation, Query, Resolver, Root, Subscription } from 'type-graphql';
import { IsOptional, MaxLength } from 'class-validator';
import { UserError } from '../../common/errors/user-error.type';
import { currentFirst } from '../../common/events/current-first';
import { readOnce } from '../../common/events/event-reads';
import { JobCharge } from './job-charge.type';
import { jobCharges } from './job-charges';
import type { JobUpdatedEvent } from '../../common/events/events';
import { ConnectionArgs } from '../../common/relay/connection.args';
import type { ConnectionShape } from '../../common/relay/connection.type';
import { callerId, eventsOf, type Context } from '../../context';
import { Account } from '../accounts/account.type';
import { Balance } from '../ledger/balance.type';
import { GenerationJob, GenerationJobConnection } from './generation-job.type';
import { isUuid, isWorkspaceId } from '../../common/ids';
import { jobFor } from '../workspaces/job-access';
import { jobsPage } from '../accounts/holder-pages';
import type { StartOutcome } from './generation.service';
import { featureTier } from '../quotes/tier-gate';
import { JobStatus } from './job-status.enum';
import { StartGenerationInput } from './start-generation.input';
import { CancelGenerationPayload, StartGenerationPayload } from './start-generation.payload';
import { holderOf, holderOrThrow } from '../workspaces/holder';

/** A page of jobs, optionally of one status (an account's, a workspace's). */
@ArgsType()
export class JobsArgs extends ConnectionArgs {
  @Field(_type => JobStatus, { nullable: true, description: 'Only jobs in this status' })
  status?: JobStatus | null;
}

@ArgsType()
class JobUpdatedArgs {
  @Field(_type => ID, { nullable: true, description: 'Only this job' })
  @IsOptional()
  @MaxLength(64)
  jobId?: string | null;

  @Field(_type => ID, { nullable: true, description: "A workspace's jobs (members only)" })
  @IsOptional()
  @MaxLength(128)
  workspaceId?: string | null;
}

@Resolver(_of => Account)
export class AccountJobsResolver {
  @FieldResolver(_returns => GenerationJobConnection, { description: "Every job the account started (its own, and those it started from workspaces' pools), newest first, whatever the balance." })
  jobs(@Root() account: Account, @Args(_type => JobsArgs) args: JobsArgs, @Ctx() ctx: Context): Promise<ConnectionShape<GenerationJob>> {
    // A person's jobs are those they started; a workspace's (an admin looking it up), those it paid for.
    return jobsPage(ctx.services.db, isWorkspaceId(account.id) ? 'account_id' : 'started_by', account.id, args);
  }
}

@Resolver(_of => GenerationJob)
export class JobQueueResolver {
  @FieldResolver(_returns => Int, { nullable: true, description: 'Its place among the QUEUED jobs of its queue class (1: claimed next); null unless QUEUED' })
  queuePosition(@Root() job: GenerationJob, @Ctx() ctx: Context): Promise<number | null> {
    return ctx.services.generations.queuePosition(job);
  }

  @FieldResolver(_returns => [JobCharge], { description: 'Its receipt: which lots paid for it and how much of each came back (from the ledger)' })
  charges(@Root() job: GenerationJob, @Ctx() ctx: Context): Promise<JobCharge[]> {
    return jobCharges(ctx.services.db, job.accountId, job.id);
  }
}

@Resolver()
export class GenerationResolver {
  @Authorized()
  @Mutation(_returns => StartGenerationPayload, { description: 'Takes the credits and queues the job, or refuses with userErrors and changes nothing.' })
  async startGeneration(@Arg('input', _type => StartGenerationInput) input: StartGenerationInput, @Ctx() ctx: Context): Promise<StartGenerationPayload> {
    await ctx.services.accounts.ensureOpen(callerId(ctx)); // any role generating for itself has an account
    const holder = await holderOf(ctx, input.workspaceId, 'member', ['input', 'workspaceId']);
    if ('error' in holder) return { job: null, quote: null, balance: null, topUpOptions: [], userErrors: [UserError.of(holder.error.code, holder.error.message, holder.error.field)] };
    const out = await ctx.services.generations.start(holder.accountId, input, holder.member);
    return this.payload(ctx, holder.accountId, out);
  }

  private async payload(ctx: Context, accountId: string, out: StartOutcome): Promise<StartGenerationPayload> {
    const { services } = ctx;
    const job = out.job ?? (out.jobId ? await services.generations.get(accountId, out.jobId) : undefined);
    let quote = out.quote;
    if (!quote && out.quoteId) {
      // A replay: show the stored quote as it is now.
      const q = await services.quotes.find(accountId, out.quoteId);
      const b = await services.ledger.balance(accountId);
      const account = await services.accounts.get(accountId);
      if (q && b && account) quote = await services.quotes.view(q, b.available, featureTier({ tier: account.tier, plan_status: account.planStatus }), { settings: q.settings, model: (await services.catalog.models()).find((m) => m.code === q.settings.model)! });
    }
    const packs = out.topUpPacks?.length ? (await services.catalog.packs()).filter((p) => out.topUpPacks!.includes(p.code)) : [];
    return {
      job: job ? GenerationJob.fromRow(job) : null,
      quote: quote ?? null,
      balance: out.balance ? Balance.of(out.balance) : null,
      topUpOptions: out.topUpPacks ? out.topUpPacks.map((c) => packs.find((p) => p.code === c)!).filter(Boolean) : [],
      userErrors: out.error ? [UserError.of(out.error.code, out.error.message, out.error.field)] : [],
    };
  }

  @Authorized()
  @Mutation(_returns => CancelGenerationPayload, { description: 'A QUEUED job becomes CANCELED and its credits come back; a RUNNING job is asked to stop (cancelRequested), and gives back its unrendered share when its worker stops it.' })
  async cancelGeneration(@Arg('jobId', _type => ID) jobId: string, @Ctx() ctx: Context): Promise<CancelGenerationPayload> {
    // A workspace job is canceled on the workspace's account (the caller may: jobFor); any other id as unknown.
    const job = await jobFor(ctx, jobId, 'cancel');
    const out = await ctx.services.generations.cancel(job?.account_id ?? callerId(ctx), jobId);
    return {
      job: out.job ? GenerationJob.fromRow(out.job) : null,
      balance: out.balance ? Balance.of(out.balance) : null,
      userErrors: out.error ? [UserError.of(out.error.code, out.error.message, out.error.field)] : [],
    };
  }

  @Authorized()
  @Query(_returns => GenerationJob, { nullable: true, description: 'One of your own jobs, or of a workspace you are a member of (null for any other id).' })
  async job(@Arg('id', _type => ID) id: string, @Ctx() ctx: Context): Promise<GenerationJob | null> {
    const row = await jobFor(ctx, id, 'see');
    return row ? GenerationJob.fromRow(row) : null;
  }

  @Authorized()
  @Subscription(_returns => GenerationJob, {
    description: "Every state and progress change of the caller's own jobs (or, with workspaceId, of the workspace's) after commit; with jobId, that job as it is now, then its changes.",
    subscribe: async ({ context, args }) => {
      const ctx = context as Context;
      const { jobId: only, workspaceId } = args as JobUpdatedArgs;
      const holder = await holderOrThrow(ctx, workspaceId, 'member', ['workspaceId']);
      const source = eventsOf(ctx, 'job', holder);
      if (!only) return source;
      const accountId = holder.accountId;
      return currentFirst<JobUpdatedEvent>(
        source,
        async () => {
          const row = isUuid(only) ? await ctx.services.generations.get(accountId, only) : undefined;
          return row && { type: 'job', accountId, jobId: row.id, status: row.status, progress: row.progress };
        },
        (a, b) => a.status === b.status && a.progress === b.progress,
        (e) => e.jobId === only,
      );
    },
  })
  async jobUpdated(@Root() event: JobUpdatedEvent, @Args(_type => JobUpdatedArgs) _args: JobUpdatedArgs, @Ctx() ctx: Context): Promise<GenerationJob> {
    // Read once for every subscriber of this event on this instance (the row is shared: copied, never changed).
    const row = await readOnce(event, 'job', async () => (isUuid(event.jobId) ? ctx.services.generations.get(event.accountId, event.jobId) : undefined));
    if (!row) throw new Error(`job ${event.jobId} vanished`);
    // The event carries the state it announces; the row may already be further along.
    return GenerationJob.fromRow({ ...row, status: event.status as JobStatus, progress: event.progress });
  }
}
