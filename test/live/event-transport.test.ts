/**
 * How live events travel (src/common/events/event-transport.ts): as transactional logical
 * decoding messages wherever the database allows it (the embedded one does: wal_level=logical),
 * streamed by each instance from a temporary slot of its own; else, or when told, by pg_notify.
 * Either way a committed change reaches its subscriber, and a rolled-back one never does.
 */
import { BalanceChangedDocument } from '../graphql/generated';
import { adjustCredits, openAccount } from '../helpers/accounts';
import { subscribe } from '../helpers/subscriptions';
import { eventually, startTestApp, useTestApp } from '../helpers/test-app';

const t = useTestApp({ EVENTS_TRANSPORT: 'auto' });

async function walLevel(): Promise<string> {
  return (await t.app.one<{ wal_level: string }>('SHOW wal_level')).wal_level;
}

/** The database's event setting, and the instance's slots, as an operator sees them. */
async function transportSeen(db = t.app) {
  const setting = await db.one<{ v: string | null }>(`SELECT current_setting('credits.events', true) AS v`);
  const slots = await db.one<{ n: number }>(`SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name LIKE 'credits_events_%' AND database = current_database()`);
  return { setting: setting.v || null, slots: slots.n };
}

describe('event transport', () => {
  it('sends events as logical messages when the database allows it (wal_level=logical), and by pg_notify otherwise', async () => {
    const logical = (await walLevel()) === 'logical';
    const seen = await transportSeen();
    expect(seen).toEqual(logical ? { setting: 'logical', slots: 1 } : { setting: null, slots: 0 });
    await openAccount(t.app, 'transported', { balance: 10 });
    const sub = subscribe(t.app.ws({ sub: 'transported' }), BalanceChangedDocument, {});
    await sub.waitFor(1);
    await eventually(() => t.app.server.services.events.subscribers('balance', 'transported') === 1);
    await adjustCredits(t.app, 'transported', 5);
    await sub.waitFor(2);
    expect(sub.events.map((e) => e.balanceChanged.available)).toEqual([10, 15]);
    // A rolled-back change sends nothing, whichever way events travel.
    await t.app.audit.query(`BEGIN; SELECT event_send('{"type":"balance","accountId":"transported","available":99,"lowCreditThreshold":0}'); ROLLBACK;`);
    await adjustCredits(t.app, 'transported', 1);
    await sub.waitFor(3);
    expect(sub.events.map((e) => e.balanceChanged.available)).toEqual([10, 15, 16]);
    await sub.dispose();
  });

  it('uses pg_notify by default (and when told: EVENTS_TRANSPORT=notify), and delivers the same', async () => {
    const app = await startTestApp({});
    try {
      expect(await transportSeen(app)).toEqual({ setting: null, slots: 0 });
      await openAccount(app, 'notified', { balance: 3 });
      const sub = subscribe(app.ws({ sub: 'notified' }), BalanceChangedDocument, {});
      await sub.waitFor(1);
      await eventually(() => app.server.services.events.subscribers('balance', 'notified') === 1);
      await adjustCredits(app, 'notified', 4);
      await sub.waitFor(2);
      expect(sub.events.map((e) => e.balanceChanged.available)).toEqual([3, 7]);
      await sub.dispose();
    } finally {
      await app.stop();
    }
  });

  it('refuses to start with EVENTS_TRANSPORT=logical where the database cannot, saying why', async () => {
    if ((await walLevel()) === 'logical') {
      // The embedded database can: the instance starts, and reads from its own slot.
      const app = await startTestApp({ EVENTS_TRANSPORT: 'logical' });
      try {
        expect(await transportSeen(app)).toEqual({ setting: 'logical', slots: 1 });
      } finally {
        await app.stop();
      }
    } else {
      await expect(startTestApp({ EVENTS_TRANSPORT: 'logical' })).rejects.toThrow(/^EVENTS_TRANSPORT=logical, but wal_level is \w+, not logical/);
    }
  });
});
