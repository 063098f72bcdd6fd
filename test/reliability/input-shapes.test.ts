/**
 * Values PostgreSQL cannot take as they are — a NUL character in free text or a key, a cursor
 * whose parts are not a timestamp and an id of the table's kind — are refused up front with
 * BAD_USER_INPUT naming the field, before any transaction starts, and change nothing. (Without
 * these checks they reached the database and came back as data exceptions, answered only by the
 * error formatter's generic "A value in the request is not valid".)
 */
import { Role } from '../../src/common/auth/role.enum';
import { encodeCursor } from '../../src/common/relay/cursor';
import { useTestApp } from '../helpers/test-app';

const t = useTestApp({ TEST_CLOCK: '1', JOB_SWEEP_INTERVAL_MS: '3600000' });
const USER = 'shapes-user';
const admin = { sub: 'shapes-admin', role: Role.ADMIN };
const user = { sub: USER };

type Errors = { message: string; extensions?: Record<string, unknown> }[] | undefined;

/** The money and request state a refusal must leave alone. */
async function state(): Promise<string> {
  const { rows } = await t.app.audit.query(`
    SELECT concat_ws('|',
      (SELECT count(*) || ':' || coalesce(sum(amount), 0) FROM ledger_entries),
      (SELECT md5(coalesce(string_agg(id || '=' || available, ',' ORDER BY id), '')) FROM accounts),
      (SELECT md5(coalesce(string_agg(id || '=' || status, ',' ORDER BY id), '')) FROM purchases),
      (SELECT md5(coalesce(string_agg(id || '=' || status || coalesce(decision_reason, ''), ',' ORDER BY id), '')) FROM refund_requests),
      (SELECT count(*) FROM idempotency_keys)) AS s`);
  return rows[0].s;
}

/** The refusal names the field and says why, with BAD_USER_INPUT: not the formatter's catch-all. */
function expectRefused(label: string, errors: Errors, why: RegExp): void {
  const text = JSON.stringify(errors ?? null);
  expect(`${label}: ${errors?.[0]?.extensions?.code}`).toBe(`${label}: BAD_USER_INPUT`);
  expect(`${label}: ${text}`).toMatch(why);
  expect(text).not.toMatch(/A value in the request is not valid/);
}

const NUL = 'a\u0000b';
let purchaseId: string;
let reviewId: string;

beforeAll(async () => {
  const bought = await t.app.raw<{ purchaseCreditPack: { purchase: { id: string } } }>(
    'mutation { purchaseCreditPack(input: { packCode: "STARTER" }) { purchase { id } userErrors { code } } }',
    undefined,
    user,
  );
  purchaseId = bought.data!.purchaseCreditPack.purchase.id;
  // An annual plan past the full-refund window goes to review: a request an admin can decide with a note.
  const annual = await t.app.raw<{ changePlan: { purchase: { id: string } } }>(
    'mutation { changePlan(input: { tier: CREATOR, interval: ANNUAL }) { purchase { id } userErrors { code } } }',
    undefined,
    { sub: 'shapes-annual' },
  );
  await t.app.raw('mutation { advanceTestClock(hours: 960) }', undefined, admin);
  const asked = await t.app.raw<{ requestRefund: { refundRequest: { id: string; status: string } } }>(
    'mutation($p: ID!) { requestRefund(input: { purchaseId: $p }) { refundRequest { id status } userErrors { code } } }',
    { p: annual.data!.changePlan.purchase.id },
    { sub: 'shapes-annual' },
  );
  expect(asked.data!.requestRefund.refundRequest.status).toBe('PENDING_REVIEW');
  reviewId = asked.data!.requestRefund.refundRequest.id;
});

describe('NUL characters in billing, refund and adjustment inputs', () => {
  const cases: [string, string, Record<string, unknown>, { sub: string; role?: Role }, RegExp][] = [
    ['purchaseCreditPack.idempotencyKey', 'mutation($i: PurchaseCreditPackInput!) { purchaseCreditPack(input: $i) { purchase { id } userErrors { code } } }', { i: { packCode: 'STARTER', idempotencyKey: NUL } }, user, /idempotencyKey must not contain NUL characters/],
    ['purchaseCreditPack.packCode', 'mutation($i: PurchaseCreditPackInput!) { purchaseCreditPack(input: $i) { purchase { id } userErrors { code } } }', { i: { packCode: 'STAR\u0000TER' } }, user, /packCode must not contain NUL characters/],
    ['changePlan.idempotencyKey', 'mutation($i: ChangePlanInput!) { changePlan(input: $i) { plan { status } userErrors { code } } }', { i: { tier: 'CREATOR', interval: 'MONTHLY', idempotencyKey: NUL } }, user, /idempotencyKey must not contain NUL characters/],
    ['requestRefund.reason', 'mutation($i: RequestRefundInput!) { requestRefund(input: $i) { refundRequest { id } userErrors { code } } }', { i: { purchaseId: '', reason: NUL } }, user, /reason must not contain NUL characters/],
    ['requestRefund.purchaseId', 'mutation($i: RequestRefundInput!) { requestRefund(input: $i) { refundRequest { id } userErrors { code } } }', { i: { purchaseId: NUL } }, user, /purchaseId must not contain NUL characters/],
    ['reviewRefundRequest.note', 'mutation($i: ReviewRefundInput!) { reviewRefundRequest(input: $i) { refundRequest { id } userErrors { code } } }', { i: { id: '', approve: false, note: NUL } }, admin, /note must not contain NUL characters/],
    ['reviewRefundRequest.id', 'mutation($i: ReviewRefundInput!) { reviewRefundRequest(input: $i) { refundRequest { id } userErrors { code } } }', { i: { id: NUL, approve: false } }, admin, /id must not contain NUL characters/],
    ['adjustCredits.reason', 'mutation($i: AdjustCreditsInput!) { adjustCredits(input: $i) { entry { id } userErrors { code } } }', { i: { accountId: USER, amount: 5, reason: NUL } }, admin, /reason must not contain NUL characters/],
    ['adjustCredits.idempotencyKey', 'mutation($i: AdjustCreditsInput!) { adjustCredits(input: $i) { entry { id } userErrors { code } } }', { i: { accountId: USER, amount: 5, reason: 'fix', idempotencyKey: NUL } }, admin, /idempotencyKey must not contain NUL characters/],
    ['adjustCredits.accountId', 'mutation($i: AdjustCreditsInput!) { adjustCredits(input: $i) { entry { id } userErrors { code } } }', { i: { accountId: NUL, amount: 5, reason: 'fix' } }, admin, /accountId must not contain NUL characters/],
  ];

  it.each(cases)('refuses a NUL in %s up front with BAD_USER_INPUT and changes nothing', async (label, query, variables, as, why) => {
    // Real ids where the case leaves them blank, so only the NUL is wrong.
    const vars = JSON.parse(JSON.stringify(variables)) as { i: Record<string, unknown> };
    if (vars.i.purchaseId === '') vars.i.purchaseId = purchaseId;
    if (vars.i.id === '') vars.i.id = reviewId;
    const before = await state();
    const res = await t.app.raw(query, vars, as);
    expectRefused(label, res.errors as Errors, why);
    expect(res.status).toBe(200); // an answer about the input, not a failure of the request
    expect(await state()).toBe(before);
  });

  it('still takes the same inputs without the NUL', async () => {
    const res = await t.app.raw<{ purchaseCreditPack: { purchase: { id: string } | null; userErrors: unknown[] } }>(
      'mutation($i: PurchaseCreditPackInput!) { purchaseCreditPack(input: $i) { purchase { id } userErrors { code } } }',
      { i: { packCode: 'STARTER', idempotencyKey: 'a b\u00a0é👩‍👩‍👧' } },
      user,
    );
    expect(res.errors).toBeUndefined();
    expect(res.data!.purchaseCreditPack.userErrors).toEqual([]);
    const note = await t.app.raw<{ reviewRefundRequest: { refundRequest: { status: string; decisionReason: string } } }>(
      'mutation($i: ReviewRefundInput!) { reviewRefundRequest(input: $i) { refundRequest { status decisionReason } userErrors { code } } }',
      { i: { id: reviewId, approve: false, note: 'outside the terms\u2028(line separator kept)' } },
      admin,
    );
    expect(note.data!.reviewRefundRequest.refundRequest).toEqual({ status: 'DENIED', decisionReason: 'outside the terms\u2028(line separator kept)' });
  });
});

describe('crafted cursors', () => {
  const raw = (s: string) => Buffer.from(s, 'utf8').toString('base64url');
  const at = new Date('2030-01-01T00:00:00.000Z');
  const uuid = '0000000a-0000-4000-8000-00000000000b';
  // Each is the exact encoding the API would issue for these parts, so only the parts' shape is wrong.
  const crafted: [string, string, string[]][] = [
    ['an id that is not a uuid', encodeCursor({ createdAt: at, id: 'not-a-uuid' }), ['jobs', 'notifications', 'purchases', 'refundRequests', 'ledger']],
    ['a NUL in the id', encodeCursor({ createdAt: at, id: `${uuid.slice(0, 35)}\u0000` }), ['jobs', 'notifications', 'purchases', 'refundRequests', 'ledger']],
    ['a number where a uuid belongs', encodeCursor({ createdAt: at, id: '12345' }), ['jobs', 'notifications', 'purchases', 'refundRequests']],
    ['a uuid where a number belongs', encodeCursor({ createdAt: at, id: uuid }), ['ledger']],
    ['a number beyond bigint', encodeCursor({ createdAt: at, id: '99999999999999999999' }), ['ledger']],
    ['a timestamp before year 1', encodeCursor({ createdAt: new Date(-8.64e15), id: uuid }), ['purchases']],
    ['year 0', encodeCursor({ createdAt: new Date('0000-06-01T00:00:00.000Z'), id: uuid }), ['purchases']],
    ['a timestamp past year 9999', encodeCursor({ createdAt: new Date(8.64e15), id: uuid }), ['purchases']],
    ['an uppercase uuid', encodeCursor({ createdAt: at, id: uuid.toUpperCase() }), ['purchases']],
    ['no separator', raw('2030-01-01T00:00:00.000Z'), ['purchases']],
    ['not base64url', '!!!', ['purchases']],
  ];

  it.each(crafted)('refuses a cursor with %s on every connection with BAD_USER_INPUT, not a database error', async (_label, after, fields) => {
    for (const field of fields) {
      const q = `query($a: String) { me { ${field}(first: 5, after: $a) { edges { cursor } } } }`;
      const res = await t.app.raw(q, { a: after }, user);
      expectRefused(`me.${field}`, res.errors as Errors, /The cursor is not one this API issued/);
      expect(res.errors![0].extensions!.field).toEqual(['after']);
    }
    const review = await t.app.raw('query($a: String) { refundRequestsToReview(first: 5, after: $a) { edges { cursor } } }', { a: after }, admin);
    if (fields.includes('refundRequests')) expectRefused('refundRequestsToReview', review.errors as Errors, /The cursor is not one this API issued/);
  });

  it('pages on with the cursors it issued, on uuid and numeric ids alike', async () => {
    for (const field of ['purchases', 'ledger', 'notifications']) {
      const q = `query($a: String) { me { ${field}(first: 1, after: $a) { edges { cursor } pageInfo { hasNextPage endCursor } } } }`;
      const seen: string[] = [];
      let after: string | null = null;
      for (let i = 0; i < 10; i++) {
        const res: { data?: { me: Record<string, { edges: { cursor: string }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } }> } | null; errors?: unknown } = await t.app.raw(q, { a: after }, user);
        expect(res.errors).toBeUndefined();
        const page = res.data!.me[field];
        seen.push(...page.edges.map((e) => e.cursor));
        if (!page.pageInfo.hasNextPage) break;
        after = page.pageInfo.endCursor;
      }
      expect(`${field}: ${seen.length >= 2}`).toBe(`${field}: true`);
      expect(new Set(seen).size).toBe(seen.length);
    }
  });
});
