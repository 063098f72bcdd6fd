/**
 * Money that comes back to the buyer outside requestRefund, under PAYMENT_PROVIDER=stripe: a
 * refund made in Stripe's dashboard (`charge.refunded` we did not ask for) and disputes
 * (`charge.dispute.created` / `.closed`). Events are signed with the library's test-header
 * helper; the library talks to a local stub of Stripe's API (both in helpers/stripe-stub.ts).
 */
import { CancelGenerationDocument, ChangePlanWithCheckoutDocument, MyPlanDocument, PurchaseCreditPackDocument, RequestRefundDocument, StartGenerationDocument } from './graphql/generated';
import { balanceOf, signupCredits } from './helpers/accounts';
import { deliverEvent, packCheckoutCompleted, planCheckoutCompleted, stripeEvent as event, useStripeApp } from './helpers/stripe-stub';
import { notesOf } from './helpers/notices';

const t = useStripeApp();
const { stub } = t;
let signup: number; // the catalog's sign-up credits: every account starts with them

beforeAll(async () => {
  signup = await signupCredits(t.app);
});

// ---- events, signed as Stripe signs them ----

function chargeRefunded(id: string, c: { intent: string; amount: number; refunded: number; refunds?: string[]; invoice?: string }) {
  return event(id, 'charge.refunded', {
    id: `ch_${c.intent}`, object: 'charge', payment_intent: c.intent, amount: c.amount, amount_refunded: c.refunded, refunded: c.refunded >= c.amount,
    ...(c.invoice ? { invoice: c.invoice } : {}),
    refunds: { object: 'list', data: (c.refunds ?? []).map((r) => ({ id: r, object: 'refund', status: 'succeeded' })) },
  });
}

function dispute(id: string, type: string, d: { id: string; intent: string; status: string; amount?: number; invoice?: string }) {
  const charge = d.invoice ? { id: `ch_${d.intent}`, object: 'charge', invoice: d.invoice } : `ch_${d.intent}`;
  return event(id, type, { id: d.id, object: 'dispute', charge, payment_intent: d.intent, amount: d.amount ?? 500, status: d.status, reason: 'fraudulent' });
}

const deliver = (e: object) => deliverEvent(t.app, e);
const deliverMany = (e: object, n: number) => Promise.all(Array.from({ length: n }, () => deliver(e)));

// ---- the API and the database ----

const status = async (purchaseId: string) => (await t.app.one<{ status: string }>('SELECT status FROM purchases WHERE id = $1', [purchaseId])).status;
const entries = (sub: string, kind: string) => t.app.rows(`SELECT amount, description FROM ledger_entries WHERE account_id = $1 AND kind = $2 ORDER BY id`, [sub, kind]);
const notes = async (sub: string, kind: string) => (await notesOf(t.app, sub, [kind])).map(({ message }) => ({ message })).sort((a, b) => a.message.localeCompare(b.message));

/** A STARTER pack (50 credits, 500 cents) paid through Checkout with payment intent `intent`: 50 credits on top of the sign-up credits. */
async function paidPack(sub: string, intent: string): Promise<string> {
  const r = await t.app.gql(PurchaseCreditPackDocument, { input: { packCode: 'STARTER' } }, { sub });
  const purchaseId = r.data!.purchaseCreditPack.purchase!.id;
  expect(await deliver(packCheckoutCompleted(`evt_paid_${sub}`, purchaseId, sub, intent))).toBe(200);
  expect(await balanceOf(t.app, sub)).toBe(signup + 50);
  return purchaseId;
}

/** A 9-credit generation, left QUEUED (no worker runs here). */
async function spend9(sub: string): Promise<string> {
  const r = await t.app.gql(StartGenerationDocument, { input: { settings: { type: 'VIDEO', durationSeconds: 5 }, prompt: 'waves' } }, { sub });
  expect(r.data!.startGeneration.job!.credits).toBe(9);
  return r.data!.startGeneration.job!.id;
}

describe('money reversed at Stripe', () => {
  it('a refund made in the dashboard takes back the unspent credits (only those), marks the purchase REFUNDED and says so, once however often it comes', async () => {
    const id = await paidPack('rv-dash', 'pi_rv_dash');
    for (let i = 0; i < 3; i++) await spend9('rv-dash'); // 27: all the sign-up credits, then some of the pack's
    const unspent = signup + 50 - 27; // the pack's, all that is left
    expect(await balanceOf(t.app, 'rv-dash')).toBe(unspent);

    const refunded = chargeRefunded('evt_rv_dash', { intent: 'pi_rv_dash', amount: 500, refunded: 500, refunds: ['re_dashboard_1'] });
    expect(await deliverMany(refunded, 5)).toEqual([200, 200, 200, 200, 200]);
    expect(await deliver(refunded)).toBe(200);
    // Another event about the same refund (Stripe's refund.updated, a second charge.refunded) changes nothing more.
    expect(await deliver(chargeRefunded('evt_rv_dash_again', { intent: 'pi_rv_dash', amount: 500, refunded: 500, refunds: ['re_dashboard_1'] }))).toBe(200);
    expect(await deliver(event('evt_rv_dash_refund', 'refund.updated', { id: 're_dashboard_1', object: 'refund', status: 'succeeded', payment_intent: 'pi_rv_dash' }))).toBe(200);

    expect(await status(id)).toBe('REFUNDED');
    expect(await balanceOf(t.app, 'rv-dash')).toBe(0);
    expect(await entries('rv-dash', 'REVOCATION')).toEqual([{ amount: -unspent, description: "Refunded at the payment provider: the STARTER credit pack's credits are withdrawn" }]);
    expect(await notes('rv-dash', 'PAYMENT_REVERSED')).toEqual([{ message: `5.00 USD of your STARTER credit pack was refunded to you at the payment provider: its ${unspent} unspent credits were withdrawn.` }]);
    expect(await notes('rv-dash', 'LOW_CREDITS')).toEqual([]);
    expect(await notes('rv-dash', 'CREDITS_DEPLETED')).toEqual([]);
    // Nothing is left to refund through us.
    const r = await t.app.gql(RequestRefundDocument, { input: { purchaseId: id } }, { sub: 'rv-dash' });
    expect(r.data!.requestRefund.userErrors[0].code).toBe('INVALID_STATE');
  });

  it('a partial refund in the dashboard takes back all the unspent credits (PARTIALLY_REFUNDED); refunding the rest later makes it REFUNDED, a stale event changes nothing', async () => {
    const id = await paidPack('rv-part', 'pi_rv_part');
    expect(await deliver(chargeRefunded('evt_rv_part_1', { intent: 'pi_rv_part', amount: 500, refunded: 200 }))).toBe(200);
    expect(await status(id)).toBe('PARTIALLY_REFUNDED');
    expect(await balanceOf(t.app, 'rv-part')).toBe(signup);
    expect(await entries('rv-part', 'REVOCATION')).toMatchObject([{ amount: -50 }]);

    expect(await deliver(chargeRefunded('evt_rv_part_2', { intent: 'pi_rv_part', amount: 500, refunded: 500 }))).toBe(200);
    expect(await status(id)).toBe('REFUNDED');
    // The older state delivered late: already covered.
    expect(await deliver(chargeRefunded('evt_rv_part_late', { intent: 'pi_rv_part', amount: 500, refunded: 200 }))).toBe(200);
    expect(await status(id)).toBe('REFUNDED');
    expect(await balanceOf(t.app, 'rv-part')).toBe(signup);
    expect(await entries('rv-part', 'REVOCATION')).toMatchObject([{ amount: -50 }]);
    expect((await notes('rv-part', 'PAYMENT_REVERSED')).map((n) => n.message).sort()).toEqual([
      '2.00 USD of your STARTER credit pack was refunded to you at the payment provider: its 50 unspent credits were withdrawn.',
      '3.00 USD of your STARTER credit pack was refunded to you at the payment provider: no unspent credits were left to withdraw.',
    ]);
  });

  it('charge.refunded for a refund we asked for only confirms it', async () => {
    const id = await paidPack('rv-ours', 'pi_rv_ours');
    const r = await t.app.gql(RequestRefundDocument, { input: { purchaseId: id } }, { sub: 'rv-ours' });
    expect(r.data!.requestRefund.refundRequest).toMatchObject({ status: 'APPROVED', amountCents: 500, creditsRevoked: 50 });
    const { provider_ref: refundId } = await t.app.one<{ provider_ref: string }>('SELECT provider_ref FROM refund_requests WHERE purchase_id = $1', [id]);
    expect(refundId).toMatch(/^re_test_/);

    expect(await deliver(chargeRefunded('evt_rv_ours', { intent: 'pi_rv_ours', amount: 500, refunded: 500, refunds: [refundId] }))).toBe(200);
    expect(await t.app.one('SELECT provider_confirmed_at IS NOT NULL AS confirmed FROM refund_requests WHERE purchase_id = $1', [id])).toEqual({ confirmed: true });
    expect(await status(id)).toBe('REFUNDED');
    expect(await balanceOf(t.app, 'rv-ours')).toBe(signup);
    expect(await entries('rv-ours', 'REVOCATION')).toEqual([{ amount: -50, description: 'Refund of the STARTER credit pack: its credits are withdrawn' }]);
    expect(await notes('rv-ours', 'PAYMENT_REVERSED')).toEqual([]);
    expect(await notes('rv-ours', 'REFUND_DECIDED')).toEqual([{ message: 'Your STARTER credit pack was refunded: 5.00 USD is on its way back and its 50 credits were withdrawn.' }]);
    expect(await t.app.rows('SELECT 1 FROM payment_reversals WHERE purchase_id = $1', [id])).toEqual([]);
  });

  it('a dispute takes back the unspent credits (DISPUTED); won, it gives back what it took once, and the purchase is COMPLETED again', async () => {
    const id = await paidPack('rv-won', 'pi_rv_won');
    await spend9('rv-won');
    await spend9('rv-won');
    const third = await spend9('rv-won'); // the rest of the sign-up credits and some of the pack's
    const fromSignup = signup - 18; // what the third job took of the sign-up credits
    const unspent = signup + 50 - 27; // the pack's, all that is left
    expect(await balanceOf(t.app, 'rv-won')).toBe(unspent);

    const opened = dispute('evt_rv_won_open', 'charge.dispute.created', { id: 'dp_won', intent: 'pi_rv_won', status: 'needs_response' });
    expect(await deliverMany(opened, 5)).toEqual([200, 200, 200, 200, 200]);
    expect(await deliver(dispute('evt_rv_won_withdrawn', 'charge.dispute.funds_withdrawn', { id: 'dp_won', intent: 'pi_rv_won', status: 'needs_response' }))).toBe(200);
    expect(await status(id)).toBe('DISPUTED');
    expect(await balanceOf(t.app, 'rv-won')).toBe(0);
    expect(await entries('rv-won', 'REVOCATION')).toEqual([{ amount: -unspent, description: "Disputed at the payment provider: the STARTER credit pack's credits are withdrawn" }]);
    expect((await notes('rv-won', 'PAYMENT_REVERSED')).map((n) => n.message)).toEqual([
      `Your payment for the STARTER credit pack was disputed with your bank: its ${unspent} unspent credits were withdrawn. If the dispute is decided for us, they come back.`,
    ]);

    // A job canceled meanwhile gives its 9 credits back to the lots they came from: the pack's share is withdrawn again at once.
    const cancel = await t.app.gql(CancelGenerationDocument, { jobId: third }, { sub: 'rv-won' });
    expect(cancel.errors).toBeUndefined();
    expect(await balanceOf(t.app, 'rv-won')).toBe(fromSignup);

    const won = dispute('evt_rv_won_closed', 'charge.dispute.closed', { id: 'dp_won', intent: 'pi_rv_won', status: 'won' });
    expect(await deliverMany(won, 5)).toEqual([200, 200, 200, 200, 200]);
    expect(await deliver(won)).toBe(200);
    expect(await deliver(dispute('evt_rv_won_closed_again', 'charge.dispute.closed', { id: 'dp_won', intent: 'pi_rv_won', status: 'won' }))).toBe(200);
    expect(await status(id)).toBe('COMPLETED');
    expect(await balanceOf(t.app, 'rv-won')).toBe(fromSignup + 50);
    expect(await t.app.rows(`SELECT e.amount, e.description, l.source, l.expires_at, e.purchase_id FROM ledger_entries e JOIN credit_lots l ON l.id = e.lot_id
                        WHERE e.account_id = 'rv-won' AND e.kind = 'GRANT' AND e.description LIKE 'Dispute%'`)).toEqual([
      { amount: 50, description: 'Dispute won: credits given back', source: 'PACK_PURCHASE', expires_at: null, purchase_id: id },
    ]);
    expect(await t.app.one('SELECT outcome, credits_revoked, credits_restored FROM payment_reversals WHERE purchase_id = $1', [id])).toEqual({ outcome: 'WON', credits_revoked: unspent, credits_restored: 50 });
  });

  it('a dispute lost changes nothing more; one that closes lost unseen takes the credits then; an inquiry or a won one never opened here changes nothing', async () => {
    const lost = await paidPack('rv-lost', 'pi_rv_lost');
    expect(await deliver(dispute('evt_rv_lost_open', 'charge.dispute.created', { id: 'dp_lost', intent: 'pi_rv_lost', status: 'needs_response' }))).toBe(200);
    expect(await deliver(dispute('evt_rv_lost_closed', 'charge.dispute.closed', { id: 'dp_lost', intent: 'pi_rv_lost', status: 'lost' }))).toBe(200);
    expect(await status(lost)).toBe('DISPUTED');
    expect(await balanceOf(t.app, 'rv-lost')).toBe(signup);
    expect(await entries('rv-lost', 'REVOCATION')).toMatchObject([{ amount: -50 }]);
    const disputed = [{ message: 'Your payment for the STARTER credit pack was disputed with your bank: its 50 unspent credits were withdrawn. If the dispute is decided for us, they come back.' }];
    expect(await notes('rv-lost', 'PAYMENT_REVERSED')).toEqual(disputed);
    expect(await t.app.one('SELECT outcome, credits_restored FROM payment_reversals WHERE purchase_id = $1', [lost])).toEqual({ outcome: 'LOST', credits_restored: 0 });

    const unseen = await paidPack('rv-unseen', 'pi_rv_unseen');
    expect(await deliver(dispute('evt_rv_unseen_closed', 'charge.dispute.closed', { id: 'dp_unseen', intent: 'pi_rv_unseen', status: 'lost' }))).toBe(200);
    expect(await status(unseen)).toBe('DISPUTED');
    expect(await balanceOf(t.app, 'rv-unseen')).toBe(signup);
    expect(await notes('rv-unseen', 'PAYMENT_REVERSED')).toEqual(disputed);

    const asked = await paidPack('rv-inquiry', 'pi_rv_inquiry');
    expect(await deliver(dispute('evt_rv_inquiry', 'charge.dispute.created', { id: 'dp_inquiry', intent: 'pi_rv_inquiry', status: 'warning_needs_response' }))).toBe(200);
    expect(await deliver(dispute('evt_rv_inquiry_won', 'charge.dispute.closed', { id: 'dp_inquiry', intent: 'pi_rv_inquiry', status: 'won' }))).toBe(200);
    expect(await status(asked)).toBe('COMPLETED');
    expect(await balanceOf(t.app, 'rv-inquiry')).toBe(signup + 50);
    expect(await notes('rv-inquiry', 'PAYMENT_REVERSED')).toEqual([]);
  });

  it('money back for a plan (matched by the invoice the charge names) ends the plan and cancels the subscription', async () => {
    for (const [sub, e] of [
      ['rv-plan-refund', (inv: string) => chargeRefunded('evt_rv_plan_refund', { intent: `pi_for_${inv}`, invoice: inv, amount: 2900, refunded: 2900 })],
      ['rv-plan-dispute', (inv: string) => dispute('evt_rv_plan_dispute', 'charge.dispute.created', { id: 'dp_plan', intent: `pi_for_${inv}`, invoice: inv, amount: 2900, status: 'needs_response' })],
    ] as const) {
      const out = (await t.app.gql(ChangePlanWithCheckoutDocument, { input: { tier: 'PRO', interval: 'MONTHLY' } }, { sub })).data!.changePlan;
      const purchaseId = out.purchase!.id;
      const invoice = `in_first_${sub}`;
      const session = out.checkoutUrl!.split('/').pop()!;
      expect(await deliver(planCheckoutCompleted(`evt_paid_${sub}`, { session, purchaseId, accountId: sub, subscription: `sub_${sub}`, invoice }))).toBe(200);
      expect(await balanceOf(t.app, sub)).toBe(signup + 1000);

      expect(await deliverMany(e(invoice), 3)).toEqual([200, 200, 200]);
      expect(await status(purchaseId)).toBe(sub === 'rv-plan-refund' ? 'REFUNDED' : 'DISPUTED');
      expect((await t.app.gql(MyPlanDocument, {}, { sub })).data!.me.plan).toMatchObject({ tier: { code: 'FREE' }, status: 'CANCELED' });
      expect(await balanceOf(t.app, sub)).toBe(signup);
      expect(await entries(sub, 'REVOCATION')).toMatchObject([{ amount: -1000 }]);
      expect((await notes(sub, 'PAYMENT_REVERSED')).map((n) => n.message)).toEqual([sub === 'rv-plan-refund'
        ? '29.00 USD of your PRO plan was refunded to you at the payment provider: its 1000 unspent credits were withdrawn.'
        : 'Your payment for the PRO plan was disputed with your bank: its 1000 unspent credits were withdrawn. If the dispute is decided for us, they come back.']);
      expect(await notes(sub, 'PLAN_ENDED')).toEqual([{ message: sub === 'rv-plan-refund'
        ? 'Your Pro plan ended with its refund; you are on the Free plan now.'
        : 'Your Pro plan ended: its payment was disputed with your bank; you are on the Free plan now.' }]);
      expect(stub.calls.filter((c) => c.method === 'DELETE' && c.path === `/v1/subscriptions/sub_${sub}`)).toHaveLength(1);
    }

    // The plan's dispute won: its month's credits come back (expiring with that month), the plan stays ended.
    const [{ id: planPurchase, month_end: monthEnd }] = await t.app.rows<{ id: string; month_end: Date }>(
      `SELECT p.id, l.expires_at AS month_end FROM purchases p JOIN credit_lots l ON l.purchase_id = p.id AND l.source = 'MONTHLY_ALLOWANCE' WHERE p.account_id = 'rv-plan-dispute'`,
    );
    const won = dispute('evt_rv_plan_won', 'charge.dispute.closed', { id: 'dp_plan', intent: 'pi_for_in_first_rv-plan-dispute', amount: 2900, status: 'won' });
    expect(await deliverMany(won, 2)).toEqual([200, 200]);
    expect(await status(planPurchase)).toBe('COMPLETED');
    expect(await balanceOf(t.app, 'rv-plan-dispute')).toBe(signup + 1000);
    expect(await t.app.rows(`SELECT l.source, l.granted, l.expires_at FROM credit_lots l JOIN ledger_entries e ON e.lot_id = l.id AND e.description = 'Dispute won: credits given back' WHERE l.account_id = 'rv-plan-dispute'`)).toEqual([
      { source: 'ADJUSTMENT', granted: 1000, expires_at: monthEnd },
    ]);
    expect((await t.app.gql(MyPlanDocument, {}, { sub: 'rv-plan-dispute' })).data!.me.plan).toMatchObject({ tier: { code: 'FREE' }, status: 'CANCELED' });
    // Its refund window is closed: no refund through us after the bank gave the money back once.
    const again = await t.app.gql(RequestRefundDocument, { input: { purchaseId: planPurchase } }, { sub: 'rv-plan-dispute' });
    expect(again.data!.requestRefund.userErrors[0].code).toBe('REFUND_WINDOW_EXPIRED');
  });

  it('an event about a payment we do not know is recorded and changes nothing', async () => {
    const before = await t.app.one<{ reversals: number; notes: number; entries: number }>(
      'SELECT (SELECT count(*) FROM payment_reversals)::int AS reversals, (SELECT count(*) FROM notifications)::int AS notes, (SELECT count(*) FROM ledger_entries)::int AS entries',
    );
    expect(await deliver(chargeRefunded('evt_rv_unknown_refund', { intent: 'pi_nobody', amount: 500, refunded: 500, refunds: ['re_nobody'] }))).toBe(200);
    expect(await deliver(dispute('evt_rv_unknown_open', 'charge.dispute.created', { id: 'dp_nobody', intent: 'pi_nobody', status: 'needs_response' }))).toBe(200);
    expect(await deliver(dispute('evt_rv_unknown_closed', 'charge.dispute.closed', { id: 'dp_nobody', intent: 'pi_nobody', status: 'lost' }))).toBe(200);
    expect(await t.app.one('SELECT (SELECT count(*) FROM payment_reversals)::int AS reversals, (SELECT count(*) FROM notifications)::int AS notes, (SELECT count(*) FROM ledger_entries)::int AS entries')).toEqual(before);
    expect(await t.app.rows(`SELECT event_id, type FROM webhook_events WHERE event_id LIKE 'evt_rv_unknown%' ORDER BY event_id`)).toEqual([
      { event_id: 'evt_rv_unknown_closed', type: 'charge.dispute.closed' },
      { event_id: 'evt_rv_unknown_open', type: 'charge.dispute.created' },
      { event_id: 'evt_rv_unknown_refund', type: 'charge.refunded' },
    ]);
  });
});
