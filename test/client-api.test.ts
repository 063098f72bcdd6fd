/**
 * What client caches and screens need (API.md "For client teams"): ids to normalise on, the
 * settings and queue place of a job, whether a quote can start, whether a purchase is still
 * refundable, the unread count, and read notifications returned as they now are; live values
 * that start from the current one; one error shape.
 */
import { parse } from 'graphql';
import { Role } from '../src/common/auth/role.enum';
import { ADMIN, adjustCredits, advanceDays, openAccount } from './helpers/accounts';
import { subscribe } from './helpers/subscriptions';
import { eventually, useTestApp } from './helpers/test-app';

const t = useTestApp({ TEST_CLOCK: '1', JOB_SWEEP_INTERVAL_MS: '3600000' });
const ULTRA = '{ type: IMAGE, imageQuality: ULTRA }';
const STANDARD = '{ type: IMAGE, imageQuality: STANDARD }';

async function gql<T = Record<string, any>>(sub: string, query: string, role?: typeof ADMIN.role): Promise<T> {
  const r = await t.app.raw<T>(query, undefined, { sub, role });
  expect(r.errors).toBeUndefined();
  return r.data!;
}

describe('the API for client caches and screens', () => {
  it('gives every cached object an id: the balance its account, catalog entries their code', async () => {
    await openAccount(t.app, 'cache');
    const d = await gql('cache', `{ me { id balance { id available } } tiers { id code } creditPacks { id code } models { id code } }`);
    expect(d.me.balance.id).toBe('cache');
    for (const list of [d.tiers, d.creditPacks, d.models]) {
      expect(list.length).toBeGreaterThan(1);
      expect(list.map((x: { id: string; code: string }) => x.id)).toEqual(list.map((x: { code: string }) => x.code));
    }
  });

  it('names every feature and says what it gives', async () => {
    const d = await gql('anyone', `{ features { code name description } }`);
    expect(d.features.map((f: { code: string }) => f.code)).toEqual([
      'ULTRA_IMAGES', 'STANDARD_VIDEOS', 'PREMIUM_VIDEOS', 'PREMIUM_MODELS', 'HIGH_RESOLUTION', 'ADVANCED_TOOLS', 'CHARACTER_MODELS',
    ]);
    expect(d.features[0]).toEqual({ code: 'ULTRA_IMAGES', name: 'Ultra images', description: 'Images at the ULTRA quality' });
  });

  it('says a quote cannot start when the tier forbids it, though the balance covers it', async () => {
    await openAccount(t.app, 'gated', { balance: 500 });
    const ultra = (await gql('gated', `{ quote(settings: ${ULTRA}) { affordable canStart missingFeatures } }`)).quote;
    expect(ultra).toEqual({ affordable: true, canStart: false, missingFeatures: ['ULTRA_IMAGES'] });
    const std = (await gql('gated', `{ quote(settings: ${STANDARD}) { affordable canStart } }`)).quote;
    expect(std).toEqual({ affordable: true, canStart: true });
    await adjustCredits(t.app, 'gated', -500);
    const poor = (await gql('gated', `{ quote(settings: ${STANDARD}) { affordable canStart } }`)).quote;
    expect(poor).toEqual({ affordable: false, canStart: false });
  });

  it('shows a job its own settings, defaults filled in, and its place in its queue while QUEUED', async () => {
    await openAccount(t.app, 'queued', { balance: 100 });
    const start = `mutation { startGeneration(input: { settings: { type: IMAGE, imageQuality: HIGH, count: 2 }, prompt: "p" }) {
      job { id queueClass queuePosition settings { type model imageQuality width height count durationSeconds videoQuality } } } }`;
    const first = (await gql('queued', start)).startGeneration.job;
    const second = (await gql('queued', start)).startGeneration.job;
    expect(first.settings).toEqual({ type: 'IMAGE', model: expect.any(String), imageQuality: 'HIGH', width: 1024, height: 1024, count: 2, durationSeconds: null, videoQuality: null });
    const ahead = (await t.app.audit.query(`SELECT count(*)::int AS n FROM generation_jobs WHERE status = 'QUEUED' AND queue_class = $1 AND id NOT IN ($2, $3)`,
      [first.queueClass, first.id, second.id])).rows[0].n;
    expect([first.queuePosition, second.queuePosition]).toEqual([ahead + 1, ahead + 2]);
    // Once the first is no longer QUEUED, the second moves up and the first has no place.
    await gql('queued', `mutation { cancelGeneration(jobId: "${first.id}") { job { status } } }`);
    const now = await gql('queued', `{ a: job(id: "${first.id}") { status queuePosition } b: job(id: "${second.id}") { queuePosition } }`);
    expect(now).toEqual({ a: { status: 'CANCELED', queuePosition: null }, b: { queuePosition: ahead + 1 } });
  });

  it('counts unread notifications and returns those it marks read, as they are now', async () => {
    await openAccount(t.app, 'reader');
    for (const key of ['a', 'b']) await gql('reader', `mutation { purchaseCreditPack(input: { packCode: "STARTER", idempotencyKey: "${key}" }) { purchase { status } } }`);
    const before = await gql('reader', `{ me { unreadNotificationCount notifications(first: 10) { edges { node { id readAt } } } } }`);
    expect(before.me.unreadNotificationCount).toBe(2);
    const [newest, older] = before.me.notifications.edges.map((e: { node: { id: string } }) => e.node.id);
    const one = (await gql('reader', `mutation { readNotifications(ids: ["${newest}", "00000000-0000-4000-8000-000000000000"]) { unreadCount notifications { id readAt } } }`)).readNotifications;
    expect(one).toEqual({ unreadCount: 1, notifications: [{ id: newest, readAt: expect.any(String) }] });
    const rest = (await gql('reader', `mutation { readNotifications { unreadCount notifications { id } } }`)).readNotifications;
    expect(rest).toEqual({ unreadCount: 0, notifications: [{ id: older }] });
    expect((await gql('reader', `mutation { readNotifications { unreadCount notifications { id } } }`)).readNotifications).toEqual({ unreadCount: 0, notifications: [] });
  });

  it('says whether a purchase is still refundable, and shows its latest refund request', async () => {
    await openAccount(t.app, 'refunder');
    const buy = `mutation { purchaseCreditPack(input: { packCode: "STARTER" }) { purchase { id refundable refundRequest { id } } } }`;
    const purchase = (id: string) => gql('refunder', `{ me { purchases(first: 10) { edges { node { id refundable refundRequest { status } } } } } }`)
      .then((d) => d.me.purchases.edges.map((e: { node: { id: string } }) => e.node).find((n: { id: string }) => n.id === id));
    const used = (await gql('refunder', buy)).purchaseCreditPack.purchase;
    expect(used).toMatchObject({ refundable: true, refundRequest: null });
    // A credit used since the purchase: the policy no longer refunds it.
    await gql('refunder', `mutation { startGeneration(input: { settings: ${STANDARD}, prompt: "p" }) { job { id } } }`);
    expect(await purchase(used.id)).toEqual({ id: used.id, refundable: false, refundRequest: null });
    const kept = (await gql('refunder', buy)).purchaseCreditPack.purchase;
    expect(kept).toMatchObject({ refundable: true, refundRequest: null });
    const asked = (await gql('refunder', `mutation { requestRefund(input: { purchaseId: "${kept.id}" }) { refundRequest { status } userErrors { code } } }`)).requestRefund;
    expect(asked).toEqual({ refundRequest: { status: 'APPROVED' }, userErrors: [] });
    expect(await purchase(kept.id)).toEqual({ id: kept.id, refundable: false, refundRequest: { status: 'APPROVED' } });
    // Each notification links to what it is about.
    const request = (await gql('refunder', '{ me { refundRequests(first: 5) { edges { node { id } } } } }')).me.refundRequests.edges[0].node.id;
    const notes = (await gql('refunder', '{ me { notifications(first: 10) { edges { node { kind purchaseId refundRequestId } } } } }')).me.notifications.edges.map((e: { node: unknown }) => e.node);
    expect(notes).toEqual([
      { kind: 'REFUND_DECIDED', purchaseId: kept.id, refundRequestId: request },
      { kind: 'PURCHASE_COMPLETED', purchaseId: kept.id, refundRequestId: null },
      { kind: 'PURCHASE_COMPLETED', purchaseId: used.id, refundRequestId: null },
    ]);
  });

  it('previews a plan change with the numbers changePlan then charges and gives', async () => {
    await openAccount(t.app, 'previewer');
    const preview = (tier: string, interval = 'MONTHLY') => gql('previewer',
      `{ planChangePreview(tier: ${tier}, interval: ${interval}) { tier interval amountCents currency creditsGranted effectiveAt userErrors { code } } }`).then((d) => d.planChangePreview);
    const change = (tier: string) => gql('previewer',
      `mutation { changePlan(input: { tier: ${tier}, interval: MONTHLY }) { plan { currentPeriodEnd } purchase { amountCents credits } userErrors { code } } }`).then((d) => d.changePlan);
    const tiers = (await gql('previewer', '{ tiers { code monthlyPriceCents monthlyCredits } }')).tiers as { code: string; monthlyPriceCents: number; monthlyCredits: number }[];
    const creator = tiers.find((x) => x.code === 'CREATOR')!;

    const start = await preview('CREATOR');
    expect(start).toMatchObject({ tier: 'CREATOR', interval: 'MONTHLY', amountCents: creator.monthlyPriceCents, currency: 'USD', creditsGranted: creator.monthlyCredits, userErrors: [] });
    expect((await change('CREATOR')).purchase).toEqual({ amountCents: start.amountCents, credits: start.creditsGranted });

    await advanceDays(t.app, 10);
    const upgrade = await preview('PRO');
    expect(upgrade.userErrors).toEqual([]);
    expect(upgrade.amountCents).toBeGreaterThan(0);
    const upgraded = await change('PRO');
    expect(upgraded.purchase).toEqual({ amountCents: upgrade.amountCents, credits: upgrade.creditsGranted });

    // Lower and FREE take effect at the period end and charge nothing; another interval is refused as changePlan refuses it.
    const periodEnd = upgraded.plan.currentPeriodEnd;
    expect(await preview('CREATOR')).toMatchObject({ amountCents: 0, creditsGranted: 0, effectiveAt: periodEnd, userErrors: [] });
    expect(await preview('FREE')).toMatchObject({ amountCents: 0, creditsGranted: 0, effectiveAt: periodEnd, userErrors: [] });
    expect((await preview('PRO', 'ANNUAL')).userErrors).toEqual([{ code: 'INVALID_STATE' }]);
    // Nothing changed: still PRO, monthly, nothing scheduled.
    expect((await gql('previewer', '{ me { plan { tier { code } scheduledTier { code } cancelAtPeriodEnd } } }')).me.plan).toEqual({ tier: { code: 'PRO' }, scheduledTier: null, cancelAtPeriodEnd: false });
  });
});

const WORKER = { sub: 'gpu-1', role: Role.WORKER };
const live = (sub: string, query: string, variables?: Record<string, unknown>) => subscribe<any, any>(t.app.ws({ sub }), parse(query) as never, variables);
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('live values that start from the current one', () => {
  it('sends the current balance first on balanceChanged, so a client back from a network drop is not left stale', async () => {
    await openAccount(t.app, 'dropped', { balance: 29 });
    const q = 'subscription { balanceChanged { id available } }';
    const before = live('dropped', q);
    expect(await before.waitFor(1)).toEqual([{ balanceChanged: { id: 'dropped', available: 29 } }]);
    await before.dispose(); // the network drops
    await adjustCredits(t.app, 'dropped', -27); // and the balance moves meanwhile
    const after = live('dropped', q);
    expect(await after.waitFor(1)).toEqual([{ balanceChanged: { id: 'dropped', available: 2 } }]);
    await adjustCredits(t.app, 'dropped', 3);
    expect(await after.waitFor(2)).toEqual([{ balanceChanged: { id: 'dropped', available: 2 } }, { balanceChanged: { id: 'dropped', available: 5 } }]);
    await pause(150);
    expect(after.events).toHaveLength(2); // each change once, the current value once
    await after.dispose();
  });

  it('sends the job as it is now first on jobUpdated(jobId), then each change, and nothing for a job of another account', async () => {
    await openAccount(t.app, 'watcher', { balance: 50 });
    const job = (await gql('watcher', `mutation { startGeneration(input: { settings: ${STANDARD}, prompt: "p" }) { job { id } } }`)).startGeneration.job.id as string;
    for (let i = 0; i < 100; i++) {
      const claimed = (await gql(WORKER.sub, 'mutation { claimGenerationJob { id } }', WORKER.role)).claimGenerationJob;
      if (!claimed || claimed.id === job) break;
    }
    await gql(WORKER.sub, `mutation { reportGenerationProgress(jobId: "${job}", progress: 40) { id } }`, WORKER.role);
    const q = 'subscription($j: ID) { jobUpdated(jobId: $j) { id status progress } }';
    const mine = live('watcher', q, { j: job });
    const stranger = live('stranger', q, { j: job });
    expect(await mine.waitFor(1)).toEqual([{ jobUpdated: { id: job, status: 'RUNNING', progress: 40 } }]);
    await gql(WORKER.sub, `mutation { completeGenerationJob(jobId: "${job}", resultUrls: ["https://cdn.example/w.png"]) { id } }`, WORKER.role);
    expect((await mine.waitFor(2))[1]).toEqual({ jobUpdated: { id: job, status: 'SUCCEEDED', progress: 100 } });
    await pause(150);
    expect([mine.events.length, stranger.events.length, stranger.errors.length]).toEqual([2, 0, 0]);
    await mine.dispose();
    await stranger.dispose();
  });

  it('still follows a job whose first read failed (the database briefly unable to answer), sending no raw error', async () => {
    await openAccount(t.app, 'unlucky', { balance: 20 });
    const job = (await gql('unlucky', `mutation { startGeneration(input: { settings: ${STANDARD}, prompt: "p" }) { job { id } } }`)).startGeneration.job.id as string;
    const bus = t.app.server.services.events;
    await t.app.audit.query('ALTER TABLE generation_jobs RENAME TO generation_jobs_away');
    let sub: ReturnType<typeof live>;
    try {
      sub = live('unlucky', 'subscription($j: ID) { jobUpdated(jobId: $j) { id status } }', { j: job });
      await eventually(() => bus.subscribers('job', 'unlucky') === 1);
      await pause(200); // the first read has failed by now
    } finally {
      await t.app.audit.query('ALTER TABLE generation_jobs_away RENAME TO generation_jobs');
    }
    await gql('unlucky', `mutation { cancelGeneration(jobId: "${job}") { job { status } } }`);
    expect(await sub!.waitFor(1)).toEqual([{ jobUpdated: { id: job, status: 'CANCELED' } }]);
    expect(sub!.errors).toEqual([]);
    await sub!.dispose();
  });

  it('lets go of a subscription at once when the client ends it, without waiting for another event', async () => {
    await openAccount(t.app, 'leaver');
    const bus = t.app.server.services.events;
    const job = (await gql('leaver', `mutation { startGeneration(input: { settings: ${STANDARD}, prompt: "p" }) { job { id } } }`)).startGeneration.job.id as string;
    const sub = live('leaver', 'subscription($j: ID) { jobUpdated(jobId: $j) { id } }', { j: job });
    await sub.waitFor(1);
    expect(bus.subscribers('job', 'leaver')).toBe(1);
    sub.unsubscribe();
    await eventually(() => bus.subscribers('job', 'leaver') === 0, 2000);
    await sub.dispose();
  });

  it('pushes each notification as it is kept, as the list then shows it, to its own account only', async () => {
    await openAccount(t.app, 'notified');
    await openAccount(t.app, 'bystander');
    const q = 'subscription { notificationAdded { id kind message purchaseId readAt } }';
    const mine = live('notified', q);
    const theirs = live('bystander', q);
    const bus = t.app.server.services.events;
    await eventually(() => bus.subscribers('notification', 'notified') === 1 && bus.subscribers('notification', 'bystander') === 1);
    const bought = (await gql('notified', 'mutation { purchaseCreditPack(input: { packCode: "STARTER" }) { purchase { id } } }')).purchaseCreditPack.purchase.id;
    const [pushed] = await mine.waitFor(1);
    const newest = (await gql('notified', '{ me { unreadNotificationCount notifications(first: 1) { edges { node { id kind message purchaseId readAt } } } } }')).me;
    expect(pushed.notificationAdded).toEqual(newest.notifications.edges[0].node);
    expect(pushed.notificationAdded).toMatchObject({ kind: 'PURCHASE_COMPLETED', purchaseId: bought, readAt: null });
    expect(newest.unreadNotificationCount).toBe(1);
    await pause(150);
    expect([mine.events.length, theirs.events.length]).toEqual([1, 0]);
    await mine.dispose();
    await theirs.dispose();
  });
});

describe('one error shape', () => {
  const errorsOf = async (query: string, as: { sub: string; role?: Role }) =>
    ((await t.app.raw(query, undefined, as)).errors ?? []).map((e) => ({ message: e.message, code: e.extensions?.code, field: e.extensions?.field, keys: Object.keys(e.extensions ?? {}).filter((k) => k !== 'stacktrace').sort() }));

  it('names the field at fault as a path and says the rule, for service checks and class-validator rules alike', async () => {
    expect(await errorsOf(`{ quote(settings: { type: IMAGE, imageQuality: STANDARD, width: 1 }) { credits } }`, { sub: 'shaped' })).toEqual([
      { message: 'width must be 64 to 8192 pixels', code: 'BAD_USER_INPUT', field: ['settings', 'width'], keys: ['code', 'field'] },
    ]);
    const secret = 'do-not-echo-' + 'x'.repeat(40);
    expect(await errorsOf(`mutation { adjustCredits(input: { accountId: "${secret}", amount: 0, reason: "" }) { userErrors { code } } }`, ADMIN)).toEqual([
      {
        message: 'input.amount must not be 0; input.reason must be longer than or equal to 1 character',
        code: 'BAD_USER_INPUT',
        field: ['input', 'amount'],
        keys: ['code', 'field'],
      },
    ]);
    expect(await errorsOf(`{ me { ledger(first: 1, after: "nonsense") { edges { cursor } } } }`, { sub: 'shaped' })).toEqual([
      { message: 'The cursor is not one this API issued', code: 'BAD_USER_INPUT', field: ['after'], keys: ['code', 'field'] },
    ]);
  });

  it('says "1 credit", not "1 credits"', async () => {
    await openAccount(t.app, 'singular', { balance: 0 });
    const out = (await adjustCredits(t.app, 'singular', -1)).data!.adjustCredits;
    expect(out.userErrors).toEqual([{ code: 'INSUFFICIENT_CREDITS', message: 'Cannot take 1 credit: the balance is 0', field: ['input', 'amount'] }]);
  });
});
