/**
 * The tier gate is decided in the service, for the tier and plan status it read; the database
 * start refuses that decision as stale when either changed before it held the account, and the
 * service decides again.
 */
import { Client } from 'pg';
import { Role } from '../src/common/auth/role.enum';
import type { SandboxProvider } from '../src/modules/billing/sandbox-provider';
import { AdjustCreditsDocument, AdvanceTestClockDocument, ChangePlanDocument, StartGenerationDocument } from './graphql/generated';
import { eventually, useTestApp } from './helpers/test-app';

const t = useTestApp({ TEST_CLOCK: '1', JOB_SWEEP_INTERVAL_MS: '3600000' });
const admin = { sub: 'ops', role: Role.ADMIN };
const ULTRA = { type: 'IMAGE' as const, imageQuality: 'ULTRA' as const };

async function onPro(sub: string): Promise<void> {
  const r = await t.app.gql(ChangePlanDocument, { input: { tier: 'PRO', interval: 'MONTHLY' } }, { sub });
  expect(r.data!.changePlan.userErrors).toEqual([]);
}

const start = (sub: string) => t.app.gql(StartGenerationDocument, { input: { settings: ULTRA, prompt: 'p' } }, { sub });
const one = async <T>(sql: string, params: unknown[] = []) => (await t.app.audit.query(sql, params)).rows[0] as T;
const balanceOf = async (sub: string) => (await one<{ available: number }>('SELECT available FROM accounts WHERE id = $1', [sub])).available;
const jobsOf = async (sub: string) => (await one<{ n: number }>('SELECT count(*)::int AS n FROM generation_jobs WHERE account_id = $1', [sub])).n;

describe('the tier gate', () => {
  it('decides again, for the FREE features, when the plan became unpaid while the start waited for the account', async () => {
    await onPro('turned');
    const before = await balanceOf('turned');
    const holder = new Client({ connectionString: t.app.databaseUrl });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM accounts WHERE id = 'turned' FOR UPDATE`);
      const pending = start('turned'); // decided for PRO: ULTRA images allowed
      await eventually(async () => (await one<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%start_generation%'`)).n === 1);
      // What a failed renewal does, under the lock the start is waiting for.
      await holder.query(`UPDATE accounts SET plan_status = 'PAST_DUE' WHERE id = 'turned'`);
      await holder.query('COMMIT');
      const out = (await pending).data!.startGeneration;
      expect(out.userErrors).toEqual([{
        code: 'FEATURE_NOT_IN_TIER',
        message: "Your PRO plan is unpaid: until it is paid you have the FREE plan's features, which do not include ULTRA_IMAGES",
        field: ['input', 'settings'],
      }]);
      expect(out.quote).toMatchObject({ missingFeatures: ['ULTRA_IMAGES'], requiredTier: 'CREATOR' });
      expect(out.job).toBeNull();
    } finally {
      await holder.end();
    }
    expect(await balanceOf('turned')).toBe(before);
    expect(await jobsOf('turned')).toBe(0);
  });

  it('gives an unpaid plan the FREE features and queue, naming what it lacks', async () => {
    await onPro('unpaid');
    (t.app.server.services.payments as SandboxProvider).failNext(1, 'card declined', 'unpaid');
    await t.app.gql(AdvanceTestClockDocument, { hours: 32 * 24 }, admin);
    await t.app.gql(AdjustCreditsDocument, { input: { accountId: 'unpaid', amount: 100, reason: 'test setup' } }, admin);
    const refused = (await start('unpaid')).data!.startGeneration;
    expect(refused.userErrors.map((e) => [e.code, e.message])).toEqual([
      ['FEATURE_NOT_IN_TIER', "Your PRO plan is unpaid: until it is paid you have the FREE plan's features, which do not include ULTRA_IMAGES"],
    ]);
    expect(refused.quote).toMatchObject({ missingFeatures: ['ULTRA_IMAGES'], requiredTier: 'CREATOR' });
    const high = await t.app.gql(StartGenerationDocument, { input: { settings: { type: 'IMAGE', imageQuality: 'HIGH' }, prompt: 'p' } }, { sub: 'unpaid' });
    expect(high.data!.startGeneration.job!.queueClass).toBe('STANDARD');
  });

  it('starts what a new plan allows at once, though the last start saw the account on FREE', async () => {
    await t.app.gql(AdjustCreditsDocument, { input: { accountId: 'upgrader', amount: 100, reason: 'test setup' } }, admin);
    const high = await t.app.gql(StartGenerationDocument, { input: { settings: { type: 'IMAGE', imageQuality: 'HIGH' }, prompt: 'p' } }, { sub: 'upgrader' });
    expect(high.data!.startGeneration.job!.queueClass).toBe('STANDARD');
    await onPro('upgrader');
    const ultra = (await start('upgrader')).data!.startGeneration;
    expect(ultra.userErrors).toEqual([]);
    expect(ultra.job!.queueClass).toBe('FAST');
  });

  it('refuses what an unpaid plan lacks, though the last start saw the plan paid', async () => {
    await onPro('lapsed');
    expect((await start('lapsed')).data!.startGeneration.job!.queueClass).toBe('FAST');
    (t.app.server.services.payments as SandboxProvider).failNext(1, 'card declined', 'lapsed');
    await t.app.gql(AdvanceTestClockDocument, { hours: 32 * 24 }, admin); // the month's allowance expired, the renewal failed
    const before = await balanceOf('lapsed');
    const refused = (await start('lapsed')).data!.startGeneration;
    expect(refused.userErrors.map((e) => e.code)).toEqual(['FEATURE_NOT_IN_TIER']);
    expect(await balanceOf('lapsed')).toBe(before);
    expect(await jobsOf('lapsed')).toBe(1);
  });

  it('queues a start decided for PRO in the PRO queue', async () => {
    await onPro('paid');
    const out = (await start('paid')).data!.startGeneration;
    expect(out.userErrors).toEqual([]);
    expect(out.job!.queueClass).toBe('FAST');
  });
});
