import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import { createClient } from 'graphql-ws';
import { Client, Pool } from 'pg';
import WebSocket from 'ws';
import { Role } from '../src/common/auth/role.enum';
import { freePort } from '../src/common/db/embedded-postgres';
import { AdjustCreditsDocument, BalanceChangedDocument, MeDocument, SetLowCreditThresholdDocument } from './graphql/generated';
import { signupCreditsAt } from './helpers/accounts';
import { startService, type ServiceProcess } from './helpers/process';
import { subscribe, untilLive } from './helpers/subscriptions';
import { assertLedgerInvariants } from './helpers/invariants';
import { createTestDatabase, eventually, TEST_JWT_SECRET, testToken } from './helpers/test-app';

/** Two real server processes on one database. */
interface Instance {
  svc: ServiceProcess;
  port: number;
}

let db: string;
let a: Instance;
let b: Instance;
let audit: Pool;

async function launch(): Promise<Instance> {
  const port = await freePort();
  const svc = startService({ DATABASE_URL: db, JWT_SECRET: TEST_JWT_SECRET, PORT: String(port), LOG_LEVEL: 'warn', SIMULATED_WORKER: '0', NODE_ENV: 'test' });
  await eventually(async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200, 30000);
  return { svc, port };
}

async function gql<T, V>(on: Instance, doc: TypedDocumentNode<T, V>, variables: V, sub: string, role = Role.USER): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${on.port}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${await testToken(sub, role)}` },
    body: JSON.stringify({ query: print(doc), variables }),
  });
  const body = (await res.json()) as { data: T; errors?: unknown };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

function wsClient(on: Instance, sub: string) {
  return createClient({
    url: `ws://127.0.0.1:${on.port}/graphql`,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    connectionParams: async () => ({ authorization: `Bearer ${await testToken(sub)}` }),
  });
}

beforeAll(async () => {
  db = await createTestDatabase();
  [a, b] = await Promise.all([launch(), launch()]);
  audit = new Pool({ connectionString: db, max: 2 });
}, 60000);

afterAll(async () => {
  for (const i of [a, b]) {
    i?.svc.child.kill('SIGTERM');
    await i?.svc.exited;
  }
  await audit?.end();
});

afterEach(async () => {
  await assertLedgerInvariants(audit);
});

describe('events across instances', () => {
  it('delivers a change made through one instance to subscribers on the other, in commit order', async () => {
    await gql(a, MeDocument, {}, 'roamer');
    const sub = subscribe(wsClient(b, 'roamer'), BalanceChangedDocument);
    await untilLive(sub, () => gql(a, SetLowCreditThresholdDocument, { threshold: 5 }, 'roamer'), 10000);

    // Twenty changes racing through both instances.
    const amounts = Array.from({ length: 20 }, (_, i) => (i % 2 ? -1 : 3));
    await Promise.all(
      amounts.map((amount, i) => gql(i % 2 ? a : b, AdjustCreditsDocument, { input: { accountId: 'roamer', amount, reason: `r${i}` } }, 'ops', Role.ADMIN)),
    );
    const events = await sub.waitFor(20, 10000);
    const committed = await audit.query(`SELECT balance_after FROM ledger_entries WHERE account_id = 'roamer' AND kind = 'ADJUSTMENT' ORDER BY id`);
    expect(events.map((e) => e.balanceChanged.available)).toEqual(committed.rows.map((r) => r.balance_after));
    expect(events[19].balanceChanged.available).toBe((await signupCreditsAt(`http://127.0.0.1:${a.port}/graphql`)) + 10 * 3 - 10);
    await new Promise((r) => setTimeout(r, 200));
    expect(sub.events).toHaveLength(20);
    await sub.dispose();
  });

  it('publishes nothing for a transaction that rolls back', async () => {
    await gql(a, MeDocument, {}, 'undone');
    const onA = subscribe(wsClient(a, 'undone'), BalanceChangedDocument);
    const onB = subscribe(wsClient(b, 'undone'), BalanceChangedDocument);
    await untilLive(onA, () => gql(b, SetLowCreditThresholdDocument, { threshold: 5 }, 'undone'), 10000);
    await untilLive(onB, () => gql(a, SetLowCreditThresholdDocument, { threshold: 5 }, 'undone'), 10000);
    onA.events.length = 0;
    onB.events.length = 0;
    const c = new Client({ connectionString: db });
    await c.connect();
    await c.query('BEGIN');
    await c.query(`SELECT * FROM ledger_grant('undone', 500, 'ADJUSTMENT', 'ADJUSTMENT', 'rolled back', NULL, NULL, NULL, NULL, 'test', now())`);
    await c.query('ROLLBACK');
    await c.query(`SELECT * FROM ledger_grant('undone', 7, 'ADJUSTMENT', 'ADJUSTMENT', 'kept', NULL, NULL, NULL, NULL, 'test', now())`);
    await c.end();
    const kept = (await signupCreditsAt(`http://127.0.0.1:${a.port}/graphql`)) + 7; // the rolled-back 500 never counted
    expect((await onA.waitFor(1))[0].balanceChanged.available).toBe(kept);
    expect((await onB.waitFor(1))[0].balanceChanged.available).toBe(kept);
    await new Promise((r) => setTimeout(r, 300));
    expect(onA.events.map((e) => e.balanceChanged.available)).toEqual([kept]);
    expect(onB.events.map((e) => e.balanceChanged.available)).toEqual([kept]);
    await onA.dispose();
    await onB.dispose();
  });
});
