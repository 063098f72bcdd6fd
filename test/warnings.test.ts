import { Role } from '../src/common/auth/role.enum';
import {
  BalanceChangedDocument,
  ClaimJobDocument,
  CompleteJobDocument,
  CreditWarningDocument,
  FailJobDocument,
  MarkNotificationsReadDocument,
  MyNotificationsDocument,
  SetLowCreditThresholdDocument,
  StartGenerationDocument,
  type CreditWarningSubscription,
} from './graphql/generated';
import { subscribe, untilLive, type Subscription } from './helpers/subscriptions';
import { adjustCredits, openAccount, signupCredits } from './helpers/accounts';
import { useTestApp } from './helpers/test-app';

const t = useTestApp({ JOB_SWEEP_INTERVAL_MS: '3600000' });
let signup: number; // the catalog's sign-up credits: every account starts with them

beforeAll(async () => {
  signup = await signupCredits(t.app);
});

/** Moves `sub`'s balance by `amount`; answers the balance after. */
async function adjust(sub: string, amount: number) {
  const r = await adjustCredits(t.app, sub, amount, { reason: 'test' });
  expect(r.data!.adjustCredits.userErrors).toEqual([]);
  return r.data!.adjustCredits.entry!.balanceAfter;
}

/** A creditWarning subscription that is known to be live (a balance subscription on the same socket answered first). */
async function warnings(sub: string): Promise<Subscription<CreditWarningSubscription>> {
  const client = t.app.ws({ sub });
  const w = subscribe(client, CreditWarningDocument);
  const probe = subscribe(client, BalanceChangedDocument);
  await untilLive(probe, () => t.app.gql(SetLowCreditThresholdDocument, { threshold: 5 }, { sub }));
  return w;
}

async function notifications(sub: string, unreadOnly?: boolean) {
  return (await t.app.gql(MyNotificationsDocument, { unreadOnly }, { sub })).data!.me.notifications;
}

const settle = () => new Promise((r) => setTimeout(r, 150));

describe('low-credit warnings', () => {
  it('warns LOW once when the balance falls below the level, with a message and the packs, and keeps it', async () => {
    await openAccount(t.app, 'lowly');
    const w = await warnings('lowly');
    expect(await adjust('lowly', 6 - signup)).toBe(6);
    await settle();
    expect(w.events).toEqual([]);
    expect(await adjust('lowly', -2)).toBe(4);
    const [first] = await w.waitFor(1);
    expect(first.creditWarning).toMatchObject({
      level: 'LOW',
      balance: 4,
      threshold: 5,
      message: '4 credits left, below your warning level of 5. Top up with a credit pack to keep generating.',
      topUpOptions: [{ code: 'STARTER', credits: 50 }, { code: 'CREATOR', credits: 200 }, { code: 'PRO', credits: 500 }],
    });
    await adjust('lowly', -1);
    await settle();
    expect(w.events).toHaveLength(1);
    const kept = await notifications('lowly');
    expect(kept.edges.map((e) => [e.node.kind, e.node.message])).toEqual([['LOW_CREDITS', first.creditWarning.message]]);
    await w.dispose();
  });

  it('does not flap while the balance hovers at the level, and warns again once it climbed above', async () => {
    await openAccount(t.app, 'hover');
    await adjust('hover', 4 - signup); // 4: LOW
    await adjust('hover', 1); // 5: at the level, not above: still disarmed
    await adjust('hover', -1); // 4: no second warning
    await adjust('hover', 2); // 6: above the level: re-armed
    await adjust('hover', -1); // 5: not below
    await adjust('hover', -1); // 4: LOW again
    const kept = await notifications('hover');
    expect(kept.edges.map((e) => e.node.kind)).toEqual(['LOW_CREDITS', 'LOW_CREDITS']);
  });

  it('warns DEPLETED once when the balance cannot pay for the cheapest generation', async () => {
    await openAccount(t.app, 'empty');
    const w = await warnings('empty');
    await adjust('empty', -signup); // 0: LOW and DEPLETED in the same change
    const got = await w.waitFor(2);
    expect(got.map((e) => [e.creditWarning.level, e.creditWarning.balance, e.creditWarning.threshold]).sort()).toEqual([
      ['DEPLETED', 0, 1],
      ['LOW', 0, 5],
    ]);
    expect(got.find((e) => e.creditWarning.level === 'DEPLETED')!.creditWarning.message).toBe(
      '0 credits left: not enough for another generation (the cheapest costs 1). Top up with a credit pack; jobs already running will finish.',
    );
    await adjust('empty', 1); // 1: at the cheapest price, not above
    await adjust('empty', -1); // 0 again: no second DEPLETED
    await adjust('empty', 2); // 2: re-armed
    await adjust('empty', -2); // 0: DEPLETED again
    const kept = await notifications('empty');
    expect(kept.edges.map((e) => e.node.kind).sort()).toEqual(['CREDITS_DEPLETED', 'CREDITS_DEPLETED', 'LOW_CREDITS']);
    await w.dispose();
  });

  it('warns nobody for a refused change, and only the owner for their own', async () => {
    await openAccount(t.app, 'owner');
    await openAccount(t.app, 'neighbour');
    const mine = await warnings('owner');
    const theirs = await warnings('neighbour');
    const refused = await adjustCredits(t.app, 'owner', -(signup + 1), { reason: 'too much' });
    expect(refused.data!.adjustCredits.userErrors[0].code).toBe('INSUFFICIENT_CREDITS');
    await settle();
    expect(mine.events).toEqual([]);
    await adjust('owner', 3 - signup);
    expect((await mine.waitFor(1))[0].creditWarning.balance).toBe(3);
    await settle();
    expect(theirs.events).toEqual([]);
    expect((await notifications('neighbour')).totalCount).toBe(0);
    await mine.dispose();
    await theirs.dispose();
  });

  it('follows the account’s own level, and never warns LOW at level 0', async () => {
    await openAccount(t.app, 'custom');
    await t.app.gql(SetLowCreditThresholdDocument, { threshold: 20 }, { sub: 'custom' });
    await adjust('custom', 19 - signup); // 19 < 20
    await openAccount(t.app, 'silent');
    await t.app.gql(SetLowCreditThresholdDocument, { threshold: 0 }, { sub: 'silent' });
    await adjust('silent', 1 - signup); // 1: above 0, and DEPLETED needs < 1
    expect((await notifications('custom')).edges.map((e) => e.node.message)).toEqual([
      '19 credits left, below your warning level of 20. Top up with a credit pack to keep generating.',
    ]);
    expect((await notifications('silent')).totalCount).toBe(0);
  });
});

describe('notifications', () => {
  it('keeps JOB_FINISHED for succeeded and failed jobs', async () => {
    await openAccount(t.app, 'maker');
    const worker = { sub: 'gpu', role: Role.WORKER };
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await t.app.gql(StartGenerationDocument, { input: { settings: { type: 'IMAGE', imageQuality: 'HIGH' }, prompt: 'p' } }, { sub: 'maker' });
      ids.push(r.data!.startGeneration.job!.id);
    }
    const claimed: string[] = [];
    while (claimed.length < 2) {
      const c = await t.app.gql(ClaimJobDocument, {}, worker);
      const job = c.data!.claimGenerationJob!;
      if (ids.includes(job.id)) claimed.push(job.id);
      else await t.app.gql(CompleteJobDocument, { jobId: job.id, resultUrls: [] }, worker);
    }
    await t.app.gql(CompleteJobDocument, { jobId: ids[0], resultUrls: ['https://cdn.example.com/1.png', 'https://cdn.example.com/2.png'] }, worker);
    await t.app.gql(FailJobDocument, { jobId: ids[1], reason: 'model crashed' }, worker);
    const kept = await notifications('maker');
    expect(kept.edges.map((e) => [e.node.kind, e.node.jobId, e.node.message])).toEqual([
      ['JOB_FINISHED', ids[1], 'Your image generation failed (model crashed); its 3 credits were refunded.'],
      ['JOB_FINISHED', ids[0], 'Your image generation is ready: 2 results.'],
    ]);
  });

  it('marks the caller’s own notifications read, some or all, and never another user’s', async () => {
    await openAccount(t.app, 'reader');
    await adjust('reader', 4 - signup); // 4: LOW
    await adjust('reader', -4); // 0: DEPLETED
    const all = await notifications('reader');
    expect(all.totalCount).toBe(2);
    const [newest, oldest] = all.edges.map((e) => e.node.id);
    const mark = (ids: string[] | null, sub: string) => t.app.gql(MarkNotificationsReadDocument, { ids }, { sub });
    expect((await mark([newest], 'lowly')).data!.markNotificationsRead).toBe(0); // someone else's id
    expect((await mark(['not-a-uuid'], 'reader')).data!.markNotificationsRead).toBe(0);
    expect((await notifications('reader', true)).totalCount).toBe(2);
    expect((await mark([newest], 'reader')).data!.markNotificationsRead).toBe(1);
    expect((await notifications('reader', true)).edges.map((e) => e.node.id)).toEqual([oldest]);
    expect((await mark(null, 'reader')).data!.markNotificationsRead).toBe(1);
    expect((await mark(null, 'reader')).data!.markNotificationsRead).toBe(0);
    const after = await notifications('reader');
    expect(after.edges.every((e) => e.node.readAt !== null)).toBe(true);
  });
});
