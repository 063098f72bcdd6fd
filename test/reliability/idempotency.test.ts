/**
 * Idempotency of every mutation that takes an idempotencyKey (startGeneration,
 * purchaseCreditPack, changePlan, adjustCredits), through the real HTTP API, with an auditor
 * checking the ledger invariants (at most one ledger change per key among them) during and
 * after each test.
 *
 * - Ten concurrent identical submissions under one key: one change (ledger entries, jobs,
 *   purchases, charges at the payment provider, idempotency records), ten identical answers.
 * - The same key with other input: IDEMPOTENCY_KEY_REUSED and nothing changes — also when the
 *   two inputs race each other, and when the key was used by another operation.
 * - A key is scoped to its caller: the same key string from two users makes two independent
 *   changes, never a replay of the other's result.
 * - A refusal (INSUFFICIENT_CREDITS) replayed after a top-up is the same refusal.
 */
import { Role } from '../../src/common/auth/role.enum';
import type { SandboxProvider } from '../../src/modules/billing/sandbox-provider';
import { signupCredits } from '../helpers/accounts';
import { startAuditor } from '../helpers/auditor';
import { scale } from '../helpers/scale';
import { useTestApp } from '../helpers/test-app';
import { Caller, OPS, type UserError } from './storm-support';

const t = useTestApp();
/** Per-test time limit: jest's 60 s in the short form, room for the larger counts in the long one. */
const LONG = scale(60_000, 10 * 60_000);
const started = Date.now();
afterAll(() => {
  process.stdout.write(`[idempotency] ${((Date.now() - started) / 1000).toFixed(1)} s in all\n`);
});

let auditor: ReturnType<typeof startAuditor>;
beforeEach(() => {
  auditor = startAuditor(t.app.audit);
});
afterEach(async () => {
  expect(await auditor.stop()).toEqual([]);
});

type Answer = { userErrors: UserError[] } & Record<string, unknown>;

/** One keyed mutation: who sends it, its input A or B under a key, and the account it changes. */
interface KeyedOp {
  name: 'startGeneration' | 'purchaseCreditPack' | 'changePlan' | 'adjustCredits';
  query: string;
  role: Role;
  input(key: string, variant: 'A' | 'B', target: string): Record<string, unknown>;
  /** What one accepted submission adds to the target account (ledger entries, jobs, purchases, provider charges). */
  change: Counts;
}

interface Counts {
  entries: number;
  jobs: number;
  purchases: number;
  charges: number;
}

const OPERATIONS: KeyedOp[] = [
  {
    name: 'startGeneration',
    query: OPS.start,
    role: Role.USER,
    input: (key, v) => ({
      input: { settings: v === 'A' ? { type: 'IMAGE', imageQuality: 'HIGH' } : { type: 'VIDEO', durationSeconds: 2 }, prompt: 'a red kite', idempotencyKey: key },
    }),
    change: { entries: 1, jobs: 1, purchases: 0, charges: 0 },
  },
  {
    name: 'purchaseCreditPack',
    query: OPS.buy,
    role: Role.USER,
    input: (key, v) => ({ input: { packCode: v === 'A' ? 'STARTER' : 'CREATOR', idempotencyKey: key } }),
    change: { entries: 1, jobs: 0, purchases: 1, charges: 1 },
  },
  {
    name: 'changePlan',
    query: OPS.changePlan,
    role: Role.USER,
    input: (key, v) => ({ input: { tier: v === 'A' ? 'CREATOR' : 'PRO', interval: 'MONTHLY', idempotencyKey: key } }),
    change: { entries: 1, jobs: 0, purchases: 1, charges: 1 }, // from FREE: a new period, its first month's allowance
  },
  {
    name: 'adjustCredits',
    query: OPS.adjust,
    role: Role.ADMIN,
    input: (key, v, target) => ({ input: { accountId: target, amount: v === 'A' ? 11 : 12, reason: 'goodwill', idempotencyKey: key } }),
    change: { entries: 1, jobs: 0, purchases: 0, charges: 0 },
  },
];

async function counts(sub: string): Promise<Counts & { available: number }> {
  const { rows } = await t.app.audit.query(
    `SELECT (SELECT count(*)::int FROM ledger_entries WHERE account_id = $1) AS entries,
            (SELECT count(*)::int FROM generation_jobs WHERE account_id = $1) AS jobs,
            (SELECT count(*)::int FROM purchases WHERE account_id = $1) AS purchases,
            (SELECT available FROM accounts WHERE id = $1) AS available`,
    [sub],
  );
  const provider = t.app.server.services.payments as SandboxProvider;
  const charges = [...provider.charges.values()].filter((c) => c.accountId === sub).length;
  return { ...rows[0], charges };
}

function plus(a: Counts & { available: number }, d: Counts): Counts {
  return { entries: a.entries + d.entries, jobs: a.jobs + d.jobs, purchases: a.purchases + d.purchases, charges: a.charges + d.charges };
}

const withoutBalance = ({ available: _a, ...rest }: Counts & { available: number }) => rest;

async function records(scope: string, key: string): Promise<number> {
  return (await t.app.audit.query('SELECT count(*)::int AS n FROM idempotency_keys WHERE scope = $1 AND key = $2', [scope, key])).rows[0].n;
}

/** A fresh account (opened, with the sign-up credits) and the caller who sends `op` for it. */
async function subjectFor(op: KeyedOp, name: string): Promise<{ target: string; caller: Caller }> {
  const owner = await Caller.as(t.app, name);
  await owner.send(OPS.me);
  return { target: name, caller: op.role === Role.USER ? owner : await Caller.as(t.app, `${name}-ops`, op.role) };
}

async function submit(op: KeyedOp, caller: Caller, key: string, variant: 'A' | 'B', target: string): Promise<Answer> {
  const data = await caller.send<Record<string, Answer>>(op.query, op.input(key, variant, target));
  return data[op.name];
}

describe.each(OPERATIONS)('$name under an idempotency key', (op) => {
  it('makes one change and gives ten identical answers for ten concurrent identical submissions, key after key', async () => {
    const keys = scale(4, 40);
    for (let k = 0; k < keys; k++) {
      const { target, caller } = await subjectFor(op, `idem-${op.name}-same-${k}`);
      const key = `same-${k}`;
      const before = await counts(target);
      const answers = await Promise.all(Array.from({ length: 10 }, () => submit(op, caller, key, 'A', target)));
      expect(answers[0].userErrors).toEqual([]);
      expect(new Set(answers.map((a) => JSON.stringify(a))).size).toBe(1);
      expect(withoutBalance(await counts(target))).toEqual(plus(before, op.change));
      expect(await records(caller.sub, key)).toBe(1);
      // And once more, after the fact: the same answer, nothing new.
      const again = await submit(op, caller, key, 'A', target);
      expect(again).toEqual(answers[0]);
      expect(withoutBalance(await counts(target))).toEqual(plus(before, op.change));
    }
  }, LONG);

  it('refuses the same key with other input with IDEMPOTENCY_KEY_REUSED and changes nothing', async () => {
    const { target, caller } = await subjectFor(op, `idem-${op.name}-other`);
    const first = await submit(op, caller, 'k-1', 'A', target);
    expect(first.userErrors).toEqual([]);
    const after = await counts(target);
    const others = await Promise.all(Array.from({ length: 10 }, () => submit(op, caller, 'k-1', 'B', target)));
    for (const o of others) {
      expect(o.userErrors.map((e) => e.code)).toEqual(['IDEMPOTENCY_KEY_REUSED']);
      expect(o.userErrors[0].message).toBe('This idempotency key was already used with other input');
    }
    expect(await counts(target)).toEqual(after);
    expect(await submit(op, caller, 'k-1', 'A', target)).toEqual(first);
    expect(await counts(target)).toEqual(after);
  });

  it('lets exactly one of two different inputs racing under one key win; every other answer is the winner’s or IDEMPOTENCY_KEY_REUSED', async () => {
    const rounds = scale(3, 20);
    for (let r = 0; r < rounds; r++) {
      const { target, caller } = await subjectFor(op, `idem-${op.name}-race-${r}`);
      const before = await counts(target);
      const variants = Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? 'A' : 'B') as 'A' | 'B');
      const answers = await Promise.all(variants.map((v) => submit(op, caller, 'contested', v, target)));
      const winners = new Set(variants.filter((_, i) => answers[i].userErrors.length === 0));
      expect(winners.size).toBe(1);
      const [winner] = [...winners];
      const won = answers.filter((_, i) => variants[i] === winner);
      const lost = answers.filter((_, i) => variants[i] !== winner);
      expect(new Set(won.map((a) => JSON.stringify(a))).size).toBe(1);
      expect(won[0].userErrors).toEqual([]);
      expect(lost.map((a) => a.userErrors.map((e) => e.code))).toEqual(Array(5).fill(['IDEMPOTENCY_KEY_REUSED']));
      expect(withoutBalance(await counts(target))).toEqual(plus(before, op.change));
    }
  }, LONG);
});

describe('keys are scoped to their caller', () => {
  it.each(OPERATIONS.filter((o) => o.role === Role.USER))(
    '$name: the same key string from two users makes two independent changes, each replayed only to its own user',
    async (op) => {
      const a = await subjectFor(op, `idem-${op.name}-user-a`);
      const b = await subjectFor(op, `idem-${op.name}-user-b`);
      const [beforeA, beforeB] = [await counts(a.target), await counts(b.target)];
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? submit(op, a.caller, 'shared-key', 'A', a.target) : submit(op, b.caller, 'shared-key', 'A', b.target))),
      );
      const ofA = answers.filter((_, i) => i % 2 === 0);
      const ofB = answers.filter((_, i) => i % 2 === 1);
      expect(ofA[0].userErrors).toEqual([]);
      expect(ofB[0].userErrors).toEqual([]);
      expect(new Set(ofA.map((x) => JSON.stringify(x))).size).toBe(1);
      expect(new Set(ofB.map((x) => JSON.stringify(x))).size).toBe(1);
      // Two different changes: the job or purchase each user got is its own.
      const idOf = (x: Answer) => ((x.job ?? x.purchase) as { id: string }).id;
      expect(idOf(ofA[0])).not.toBe(idOf(ofB[0]));
      const owners = await t.app.audit.query(
        `SELECT account_id FROM generation_jobs WHERE id::text = $1 UNION ALL SELECT account_id FROM purchases WHERE id::text = $1
         UNION ALL SELECT account_id FROM generation_jobs WHERE id::text = $2 UNION ALL SELECT account_id FROM purchases WHERE id::text = $2`,
        [idOf(ofA[0]), idOf(ofB[0])],
      );
      expect(owners.rows.map((r) => r.account_id)).toEqual([a.target, b.target]);
      expect(withoutBalance(await counts(a.target))).toEqual(plus(beforeA, op.change));
      expect(withoutBalance(await counts(b.target))).toEqual(plus(beforeB, op.change));
      expect([await records(a.target, 'shared-key'), await records(b.target, 'shared-key')]).toEqual([1, 1]);
    },
  );

  it('adjustCredits: two operators using the same key on the same account make two adjustments; one operator reusing it for another account is refused', async () => {
    const target = 'idem-adjust-shared';
    await (await Caller.as(t.app, target)).send(OPS.me);
    const ops1 = await Caller.as(t.app, 'idem-ops-1', Role.ADMIN);
    const ops2 = await Caller.as(t.app, 'idem-ops-2', Role.ADMIN);
    const input = { accountId: target, amount: 5, reason: 'apology', idempotencyKey: 'shared-key' };
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? ops1 : ops2).send<{ adjustCredits: Answer & { entry: { id: string } } }>(OPS.adjust, { input })),
    );
    const entries = new Set(answers.map((a) => a.adjustCredits.entry.id));
    expect(entries.size).toBe(2);
    const { rows } = await t.app.audit.query(`SELECT actor, amount FROM ledger_entries WHERE account_id = $1 AND kind = 'ADJUSTMENT' ORDER BY actor`, [target]);
    expect(rows).toEqual([{ actor: 'idem-ops-1', amount: 5 }, { actor: 'idem-ops-2', amount: 5 }]);
    const signup = await signupCredits(t.app);
    expect((await counts(target)).available).toBe(signup + 2 * 5);
    const elsewhere = await ops1.send<{ adjustCredits: Answer }>(OPS.adjust, { input: { ...input, accountId: 'idem-adjust-other' } });
    expect(elsewhere.adjustCredits.userErrors.map((e) => e.code)).toEqual(['IDEMPOTENCY_KEY_REUSED']);
    expect((await counts(target)).available).toBe(signup + 2 * 5);
  });

  it('refuses a key first used by another operation of the same caller, changing nothing', async () => {
    const sub = 'idem-cross-op';
    const me = await Caller.as(t.app, sub);
    await me.send(OPS.me);
    const buy = await me.send<{ purchaseCreditPack: Answer }>(OPS.buy, { input: { packCode: 'STARTER', idempotencyKey: 'one-key' } });
    expect(buy.purchaseCreditPack.userErrors).toEqual([]);
    const before = await counts(sub);
    const start = await me.send<{ startGeneration: Answer }>(OPS.start, {
      input: { settings: { type: 'IMAGE', imageQuality: 'STANDARD' }, prompt: 'x', idempotencyKey: 'one-key' },
    });
    expect(start.startGeneration).toMatchObject({ job: null, userErrors: [{ code: 'IDEMPOTENCY_KEY_REUSED' }] });
    const plan = await me.send<{ changePlan: Answer }>(OPS.changePlan, { input: { tier: 'PRO', interval: 'MONTHLY', idempotencyKey: 'one-key' } });
    expect(plan.changePlan).toMatchObject({ purchase: null, userErrors: [{ code: 'IDEMPOTENCY_KEY_REUSED' }] });
    expect(await counts(sub)).toEqual(before);
  });
});

describe('a refusal is kept under its key', () => {
  it('startGeneration: INSUFFICIENT_CREDITS replayed after a top-up is the same refusal (ten at once), and a new key then succeeds', async () => {
    const sub = 'idem-refused-start';
    const me = await Caller.as(t.app, sub);
    const ops = await Caller.as(t.app, 'idem-refusal-ops', Role.ADMIN);
    await me.send(OPS.me);
    await ops.send(OPS.adjust, { input: { accountId: sub, amount: 2 - (await signupCredits(t.app)), reason: 'leave 2' } });
    const input = { settings: { type: 'IMAGE', imageQuality: 'HIGH' }, prompt: 'too dear', idempotencyKey: 'poor' };
    const { startGeneration: first } = await me.send<{ startGeneration: Answer & { quote: { id: string } | null } }>(OPS.start, { input });
    expect(first).toMatchObject({
      job: null,
      quote: { credits: 3 },
      balance: { available: 2 },
      topUpOptions: [{ code: 'STARTER' }, { code: 'CREATOR' }, { code: 'PRO' }],
      userErrors: [{ code: 'INSUFFICIENT_CREDITS', message: 'This generation costs 3 credits and your balance is 2: 1 more needed' }],
    });
    const buy = await me.send<{ purchaseCreditPack: Answer }>(OPS.buy, { input: { packCode: 'STARTER' } });
    expect(buy.purchaseCreditPack.userErrors).toEqual([]);
    const before = await counts(sub);
    expect(before.available).toBe(52);
    const replays = await Promise.all(Array.from({ length: 10 }, () => me.send<{ startGeneration: Answer }>(OPS.start, { input })));
    for (const { startGeneration: r } of replays) {
      expect(r.job).toBeNull();
      expect(r.userErrors).toEqual(first.userErrors);
      expect(r.balance).toEqual(first.balance); // the balance the refusal saw, kept with it
      expect(r.topUpOptions).toEqual(first.topUpOptions);
      expect(r.quote).toEqual(first.quote); // the price held for it: the same quote, 3 credits

    }
    expect(await counts(sub)).toEqual(before);
    const fresh = await me.send<{ startGeneration: Answer & { job: { credits: number } } }>(OPS.start, { input: { ...input, idempotencyKey: 'rich' } });
    expect(fresh.startGeneration).toMatchObject({ userErrors: [], job: { credits: 3 }, balance: { available: 49 } });
  });

  it('adjustCredits: a refused withdrawal replayed after a top-up is the same refusal and takes nothing', async () => {
    const sub = 'idem-refused-adjust';
    await (await Caller.as(t.app, sub)).send(OPS.me);
    const ops = await Caller.as(t.app, 'idem-refusal-ops', Role.ADMIN);
    const signup = await signupCredits(t.app);
    const input = { accountId: sub, amount: -(signup + 15), reason: 'claw back', idempotencyKey: 'claw-1' };
    const { adjustCredits: first } = await ops.send<{ adjustCredits: Answer }>(OPS.adjust, { input });
    expect(first).toEqual({
      entry: null,
      balance: { available: signup },
      userErrors: [{ code: 'INSUFFICIENT_CREDITS', message: `Cannot take ${signup + 15} credits: the balance is ${signup}` }],
    });
    await ops.send(OPS.adjust, { input: { accountId: sub, amount: 100, reason: 'top-up', idempotencyKey: 'top-1' } });
    const before = await counts(sub);
    expect(before.available).toBe(signup + 100);
    const replays = await Promise.all(Array.from({ length: 10 }, () => ops.send<{ adjustCredits: Answer }>(OPS.adjust, { input })));
    for (const { adjustCredits: r } of replays) expect(r).toEqual(first);
    expect(await counts(sub)).toEqual(before);
  });
});
