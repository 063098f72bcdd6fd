/**
 * Stopping a running job (issue 14, part 4): cancelGeneration of a RUNNING job asks its worker to
 * stop (cancelRequested); the worker learns it from its next report; stopped, the job is
 * CANCELED and gives back floor(credits × (100 − progress) / 100) — to the lots it took last
 * first; completed anyway it is charged in full; a lease that runs out stops it as a cancel.
 */
import { Role } from '../src/common/auth/role.enum';
import { StartGenerationDocument } from './graphql/generated';
import { adjustCredits, openAccount } from './helpers/accounts';
import { useTestApp } from './helpers/test-app';

const t = useTestApp({ TEST_CLOCK: '1', JOB_SWEEP_INTERVAL_MS: '3600000', JOB_LEASE_SECONDS: '60' });
const GPU = { sub: 'gpu-stop', role: Role.WORKER };
const FIELDS = 'id status progress refunded cancelRequested';
type Job = { id: string; status: string; progress: number; refunded: boolean; cancelRequested: boolean };

async function running(sub: string, settings: Record<string, unknown>, progress: number): Promise<Job> {
  const s = await t.app.gql(StartGenerationDocument, { input: { settings: settings as never, prompt: 'p' } }, { sub });
  expect(s.data!.startGeneration.userErrors).toEqual([]);
  const claimed = await t.app.raw<{ claimGenerationJob: Job }>(`mutation { claimGenerationJob { ${FIELDS} } }`, undefined, GPU);
  expect(claimed.data!.claimGenerationJob.id).toBe(s.data!.startGeneration.job!.id);
  if (progress > 0) await report(claimed.data!.claimGenerationJob.id, progress);
  return claimed.data!.claimGenerationJob;
}
async function report(id: string, progress: number): Promise<Job> {
  const r = await t.app.raw<{ reportGenerationProgress: Job }>(`mutation($id: ID!, $p: Int!) { reportGenerationProgress(jobId: $id, progress: $p) { ${FIELDS} } }`, { id, p: progress }, GPU);
  expect(r.errors).toBeUndefined();
  return r.data!.reportGenerationProgress;
}
async function cancel(sub: string, id: string) {
  const r = await t.app.raw<{ cancelGeneration: { job: Job; balance: { available: number }; userErrors: { code: string }[] } }>(
    `mutation($id: ID!) { cancelGeneration(jobId: $id) { job { ${FIELDS} } balance { available } userErrors { code } } }`, { id }, { sub });
  return r.data!.cancelGeneration;
}
const worker = async (mutation: string, id: string) => t.app.raw<Record<string, Job>>(`mutation($id: ID!) { ${mutation}(jobId: $id${mutation === 'failGenerationJob' ? ', reason: "stopped"' : mutation === 'completeGenerationJob' ? ', resultUrls: ["https://r.example.invalid/1.mp4"]' : ''}) { ${FIELDS} } }`, { id }, GPU);
const refunds = (id: string) => t.app.rows<{ amount: number }>(`SELECT amount FROM ledger_entries WHERE job_id = $1 AND kind = 'REFUND'`, [id]);
const available = async (sub: string) => (await t.app.one<{ available: number }>('SELECT available FROM accounts WHERE id = $1', [sub])).available;
const VIDEO = { type: 'VIDEO', durationSeconds: 5 }; // 9 credits

describe('stopping a running job', () => {
  it('gives back exactly 60 % rounded down of a job stopped at 40 %: 5 of 9 credits', async () => {
    await openAccount(t.app, 'stopper', { balance: 100 });
    const job = await running('stopper', VIDEO, 40);
    const asked = await cancel('stopper', job.id);
    expect(asked).toEqual({ job: { ...job, progress: 40, cancelRequested: true }, balance: { available: 91 }, userErrors: [] });
    // Asking again changes nothing.
    expect((await cancel('stopper', job.id)).userErrors).toEqual([]);
    // The worker learns it from its next report, and stops.
    expect((await report(job.id, 40)).cancelRequested).toBe(true);
    const stopped = await worker('acknowledgeGenerationCancel', job.id);
    expect(stopped.data!.acknowledgeGenerationCancel).toEqual({ id: job.id, status: 'CANCELED', progress: 40, refunded: true, cancelRequested: true });
    expect(await refunds(job.id)).toEqual([{ amount: 5 }]);
    expect(await available('stopper')).toBe(96);
    // Stopped once: a second acknowledgement is refused and gives nothing more.
    expect((await worker('acknowledgeGenerationCancel', job.id)).errors![0].extensions!.code).toBe('INVALID_STATE');
    expect(await available('stopper')).toBe(96);
  });

  it('charges in full a job its worker completes anyway', async () => {
    await openAccount(t.app, 'finisher', { balance: 100 });
    const job = await running('finisher', VIDEO, 90);
    await cancel('finisher', job.id);
    const done = await worker('completeGenerationJob', job.id);
    expect(done.data!.completeGenerationJob).toMatchObject({ status: 'SUCCEEDED', progress: 100, refunded: false, cancelRequested: true });
    expect(await refunds(job.id)).toEqual([]);
    expect(await available('finisher')).toBe(91);
  });

  it('stops as a cancel when the worker reports a failure of a job asked to stop', async () => {
    await openAccount(t.app, 'failer', { balance: 100 });
    const job = await running('failer', VIDEO, 75);
    await cancel('failer', job.id);
    const out = await worker('failGenerationJob', job.id);
    expect(out.data!.failGenerationJob).toMatchObject({ status: 'CANCELED', refunded: true });
    expect(await refunds(job.id)).toEqual([{ amount: 2 }]); // floor(9 × 25 / 100)
    expect(await available('failer')).toBe(93);
  });

  it('gives nothing back for a job stopped at 100 %, and says so', async () => {
    await openAccount(t.app, 'full', { balance: 100 });
    const job = await running('full', VIDEO, 100);
    await cancel('full', job.id);
    expect((await worker('acknowledgeGenerationCancel', job.id)).data!.acknowledgeGenerationCancel).toMatchObject({ status: 'CANCELED', refunded: false });
    expect(await refunds(job.id)).toEqual([]);
    expect(await available('full')).toBe(91);
  });

  it('refuses to acknowledge a stop nobody asked for, and changes nothing', async () => {
    await openAccount(t.app, 'unasked', { balance: 100 });
    const job = await running('unasked', VIDEO, 10);
    const r = await worker('acknowledgeGenerationCancel', job.id);
    expect(r.errors![0]).toMatchObject({ message: 'No one asked to stop this job', extensions: { code: 'INVALID_STATE' } });
    expect(await t.app.one('SELECT status, refunded FROM generation_jobs WHERE id = $1', [job.id])).toEqual({ status: 'RUNNING', refunded: false });
    await worker('completeGenerationJob', job.id);
  });

  it('gives the unrendered share back to the lots the job took last first', async () => {
    await openAccount(t.app, 'lots', { tier: 'PRO' });
    await adjustCredits(t.app, 'lots', -999); // 1 credit left in the allowance, spent first
    const job = await running('lots', { type: 'IMAGE', imageQuality: 'HIGH' }, 50); // 3 credits: 1 allowance + 2 sign-up
    await cancel('lots', job.id);
    await worker('acknowledgeGenerationCancel', job.id);
    const r = await t.app.raw<{ job: { charges: { source: string; credits: number; refunded: number }[] } }>(`query($id: ID!) { job(id: $id) { charges { source credits refunded } } }`, { id: job.id }, { sub: 'lots' });
    expect(r.data!.job.charges).toEqual([
      { source: 'MONTHLY_ALLOWANCE', credits: 1, refunded: 0 },
      { source: 'SIGNUP_BONUS', credits: 2, refunded: 1 }, // floor(3 × 50 / 100) = 1, to the lot taken last
    ]);
  });

  it('stops a job asked to stop as a cancel when its lease runs out', async () => {
    await openAccount(t.app, 'silent', { balance: 100 });
    const job = await running('silent', VIDEO, 20);
    await cancel('silent', job.id);
    await t.app.server.services.testClock.advance(61_000, async () => undefined);
    expect(await t.app.server.services.workers.sweepExpiredLeases()).toEqual([job.id]);
    expect(await t.app.one('SELECT status, refunded, failure_reason FROM generation_jobs WHERE id = $1', [job.id])).toEqual({ status: 'CANCELED', refunded: true, failure_reason: null });
    expect(await refunds(job.id)).toEqual([{ amount: 7 }]); // floor(9 × 80 / 100)
    expect(await available('silent')).toBe(98);
  });
});
