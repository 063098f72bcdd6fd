/**
 * The service clock of tests starts from a fixed instant (TEST_CLOCK_START), never from today,
 * and every instance on one database shares the test clock: the first one sets where it starts.
 */
import { Role } from '../src/common/auth/role.enum';
import { startTestApp, type TestApp } from './helpers/test-app';

const ADVANCE = 'mutation ($hours: Float!) { advanceTestClock(hours: $hours) }';
const admin = { sub: 'clock-admin', role: Role.ADMIN };

async function now(app: TestApp, hours = 1e-6): Promise<number> {
  const res = await app.raw<{ advanceTestClock: string }>(ADVANCE, { hours }, admin);
  expect(res.errors).toBeUndefined();
  return new Date(res.data!.advanceTestClock).getTime();
}

describe('the test clock', () => {
  const apps: TestApp[] = [];
  afterAll(async () => {
    for (const app of apps.reverse()) await app.stop();
  });

  it('starts from TEST_CLOCK_START on a leap day, and a second instance on the database takes the first one’s clock, not its own start', async () => {
    const start = Date.parse('2024-02-29T23:30:00Z');
    const first = await startTestApp({ TEST_CLOCK: '1', TEST_CLOCK_START: '2024-02-29T23:30:00Z' });
    apps.push(first);
    const t1 = await now(first);
    expect(t1).toBeGreaterThanOrEqual(start);
    expect(t1 - start).toBeLessThan(60_000); // it runs on from the start with real time
    const second = await startTestApp({ TEST_CLOCK: '1', TEST_CLOCK_START: '2031-07-01T00:00:00Z' }, first.databaseUrl);
    apps.push(second);
    const t2 = await now(second);
    expect(t2).toBeGreaterThanOrEqual(t1);
    expect(t2 - t1).toBeLessThan(60_000);
    // Moving it on one instance moves it on the other: 30 minutes later it is March 1st.
    const moved = await now(first, 0.5);
    expect(new Date(moved).toISOString().slice(0, 10)).toBe('2024-03-01');
    const [row] = (await second.audit.query('SELECT offset_ms::float8 AS o, started_at FROM test_clock')).rows;
    expect(row.started_at.toISOString()).toBe('2024-02-29T23:30:00.000Z');
    expect(await now(second)).toBeGreaterThanOrEqual(moved);
  });

  it('starts a service without the test clock from TEST_CLOCK_START too (its quotes and purchases carry that time)', async () => {
    const app = await startTestApp({ TEST_CLOCK_START: '2027-12-31T23:00:00Z' });
    apps.push(app);
    const res = await app.raw<{ quote: { expiresAt: string } }>('{ quote(settings: { type: IMAGE, imageQuality: STANDARD }) { expiresAt } }', {}, { sub: 'clock-user' });
    expect(res.errors).toBeUndefined();
    const expires = Date.parse(res.data!.quote.expiresAt) - 600_000;
    expect(expires).toBeGreaterThanOrEqual(Date.parse('2027-12-31T23:00:00Z'));
    expect(expires - Date.parse('2027-12-31T23:00:00Z')).toBeLessThan(60_000);
  });

  const quoteTime = async (app: TestApp) => {
    const res = await app.raw<{ quote: { expiresAt: string } }>('{ quote(settings: { type: IMAGE, imageQuality: STANDARD }) { expiresAt } }', {}, { sub: 'clock-user' });
    expect(res.errors).toBeUndefined();
    return Date.parse(res.data!.quote.expiresAt) - 600_000; // the quote's own time: its expiry less its 600 s TTL
  };
  const rawNotify = (app: TestApp, offsetMs: number) =>
    app.audit.query(`SELECT pg_notify('credits_events', $1)`, [JSON.stringify({ type: 'clock', accountId: '*', offsetMs })]);
  const YEAR = 365 * 24 * 3600 * 1000;

  it('never moves the clock of an instance without TEST_CLOCK, though another on its database moves the shared one and a raw NOTIFY asks it to', async () => {
    const plain = await startTestApp({ TEST_CLOCK_START: '2027-06-01T00:00:00Z' });
    apps.push(plain);
    const clocked = await startTestApp({ TEST_CLOCK: '1', TEST_CLOCK_START: '2027-06-01T00:00:00Z' }, plain.databaseUrl);
    apps.push(clocked);
    const before = await quoteTime(plain);
    // Its own advanceTestClock is refused, and changes nothing.
    const refused = await plain.raw(ADVANCE, { hours: 24 }, admin);
    expect(refused.errors!.map((e) => [e.extensions!.code, e.message])).toEqual([['FORBIDDEN', 'The test clock is not enabled (TEST_CLOCK=1, never in production)']]);
    // The instance with the test clock moves the shared one by a day: that one follows, this one does not.
    const moved = await now(clocked, 24);
    expect(moved - before).toBeGreaterThan(24 * 3600 * 1000 - 60_000); // two instances' clocks started apart by milliseconds
    await rawNotify(plain, 10 * YEAR);
    await new Promise((r) => setTimeout(r, 300)); // any event has been delivered by now
    const after = await quoteTime(plain);
    expect(after - before).toBeLessThan(60_000);
  });

  it('takes the shared offset from the database, not from a raw NOTIFY on the events channel', async () => {
    const app = await startTestApp({ TEST_CLOCK: '1', TEST_CLOCK_START: '2028-01-01T00:00:00Z' });
    apps.push(app);
    const before = await quoteTime(app);
    await rawNotify(app, 10 * YEAR);
    await new Promise((r) => setTimeout(r, 300));
    const after = await quoteTime(app);
    expect(after - before).toBeLessThan(60_000);
    const [row] = (await app.audit.query('SELECT offset_ms::float8 AS o FROM test_clock')).rows;
    expect(Math.abs(Date.parse('2028-01-01T00:00:00Z') - Date.now() - row.o)).toBeLessThan(60_000); // the row was not moved either
  });
});
