/**
 * What client caches and screens need (API.md "For client teams"): ids to normalise on, the
 * settings and queue place of a job, whether a quote can start, whether a purchase is still
 * refundable, the unread count, and read notifications returned as they now are.
 */
import { ADMIN, adjustCredits, advanceDays, openAccount } from './helpers/accounts';
import { useTestApp } from './helpers/test-app';

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
