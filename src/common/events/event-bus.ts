/**
 * Each instance holds one dedicated connection that receives the events — decoding them from a
 * temporary logical replication slot of its own, or LISTENing on the events channel, as the
 * database sends them (event-transport.ts) — and fans them out, in commit order, to the local
 * subscribers of the account. On a lost connection it reconnects with backoff.
 *
 * Notifications sent while no connection listened (the database restarted, the network
 * dropped) are gone for good. So once it listens again, the bus tells every local balance
 * subscriber its account's current balance (a balance event that may repeat the last one);
 * notifications that arrive meanwhile are held and delivered after it, so the newest value
 * is the last one a subscriber sees. Internal consumers that act on events (auto top-up) are
 * told it reconnected (onReconnect) and catch up on what they were not told meanwhile.
 */
import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import { createPubSub, type PubSubEventTarget } from '@graphql-yoga/subscription';
import { Client } from 'pg';
import type { Logger } from 'pino';
import { EVENTS_CHANNEL, type DomainEvent, type EventType } from './events';

type Topics = Record<string, [DomainEvent]>;

/** The pub/sub's event target, knowing which topics have local subscribers right now. */
class TopicTarget extends EventTarget {
  private readonly counts = new Map<string, number>();

  constructor() {
    super();
    // One account may well have more than ten live subscriptions (several sockets, 25 each):
    // not a leak, so no warning.
    setMaxListeners(0, this);
  }

  override addEventListener(type: string, listener: Parameters<EventTarget['addEventListener']>[1], options?: Parameters<EventTarget['addEventListener']>[2]): void {
    super.addEventListener(type, listener, options);
    this.counts.set(type, (this.counts.get(type) ?? 0) + 1);
  }

  override removeEventListener(type: string, listener: Parameters<EventTarget['removeEventListener']>[1], options?: Parameters<EventTarget['removeEventListener']>[2]): void {
    super.removeEventListener(type, listener, options);
    const n = (this.counts.get(type) ?? 0) - 1;
    if (n > 0) this.counts.set(type, n);
    else this.counts.delete(type);
  }

  topics(): string[] {
    return [...this.counts.keys()];
  }

  count(type: string): number {
    return this.counts.get(type) ?? 0;
  }
}

const BALANCE_TOPIC = 'balance:';

/**
 * A transaction's commit record is decoded and streamed a moment before the transaction leaves
 * the running set, so a payload reading the row an event announces could miss it. Committed
 * transactions wait here, in commit order, until no new snapshot counts them as running (one
 * query per batch, on a connection of its own), and their events then go on in that order.
 */
class VisibleCommits {
  private readonly pending: { xid: number; payloads: string[] }[] = [];
  private client?: Client;
  private flushing = false;
  private closed = false;

  constructor(private readonly url: string, private readonly deliver: (payload: string) => void, private readonly log: Logger) {}

  add(xid: number, payloads: string[]): void {
    this.pending.push({ xid, payloads });
    if (!this.flushing) void this.flush();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.client?.end().catch(() => undefined);
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.pending.length && !this.closed) {
        const batch = this.pending.splice(0);
        await this.untilVisible(batch.map((t) => t.xid));
        for (const t of batch) for (const p of t.payloads) this.deliver(p);
      }
    } finally {
      this.flushing = false;
    }
  }

  /** Waits (up to a second, then goes on) until none of `xids` is running for a new snapshot. */
  private async untilVisible(xids: number[]): Promise<void> {
    const until = Date.now() + 1000;
    try {
      if (!this.client) {
        this.client = new Client({ connectionString: this.url, application_name: 'credits-events-visibility' });
        this.client.on('error', () => (this.client = undefined));
        await this.client.connect();
      }
      for (;;) {
        const { rows } = await this.client.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_snapshot_xip(pg_current_snapshot()) r WHERE (r::text::bigint % 4294967296) = ANY($1::bigint[])`,
          [xids],
        );
        if (rows[0].n === 0 || Date.now() > until) return;
        await new Promise((r) => setTimeout(r, 1));
      }
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'could not check that committed events are visible; sending them as they are');
      this.client = undefined;
    }
  }
}

/** PostgreSQL's epoch (2000-01-01) in Unix milliseconds: replication messages count time from it. */
const PG_EPOCH_MS = 946_684_800_000;

/** The parts of pg's connection a replication stream uses. */
interface StreamConnection {
  on(event: 'copyData', listener: (msg: { chunk: Buffer }) => void): void;
  sendCopyFromChunk(chunk: Buffer): void;
}

/**
 * The content of a pgoutput logical message of ours, or undefined for anything else (begin,
 * commit, another prefix). Layout (protocol 1): 'M', flags (1 byte), LSN (8), prefix (a C
 * string), content length (4, big-endian), content.
 */
export function messageOf(data: Buffer): string | undefined {
  if (data[0] !== 0x4d) return undefined;
  const end = data.indexOf(0, 10);
  if (end < 0 || data.toString('utf8', 10, end) !== EVENTS_CHANNEL) return undefined;
  const length = data.readInt32BE(end + 1);
  return data.toString('utf8', end + 5, end + 5 + length);
}

export class EventBus {
  private readonly topics = new TopicTarget();
  private readonly pubSub = createPubSub<Topics>({ eventTarget: this.topics as unknown as PubSubEventTarget<Topics> });
  private client?: Client;
  /** LISTEN was in place once: a later connection follows a loss and resyncs. */
  private listened = false;
  /** Notifications held while the current balances are read after a reconnect. */
  private held?: DomainEvent[];
  private stopped = false;
  private reconnectTimer?: NodeJS.Timeout;
  private readyResolve?: () => void;
  /** Resolves once LISTEN is in place. */
  readonly ready: Promise<void>;

  /**
   * `url`: where to LISTEN (notify); with `logical`, the owner's connection that may create a
   * replication slot (the slot is temporary: it goes with the connection).
   */
  constructor(
    private readonly url: string,
    private readonly log: Logger,
    private readonly logical?: { ownerUrl: string },
  ) {
    this.ready = new Promise((r) => (this.readyResolve = r));
  }

  async start(): Promise<void> {
    await this.connect();
  }

  /** An event as it arrived (a notification's or a logical message's payload). */
  private receive(payload: string): void {
    try {
      const event = JSON.parse(payload) as DomainEvent;
      this.received.set(event, performance.now());
      if (this.held) this.held.push(event);
      else this.dispatch(event);
    } catch (e) {
      this.log.error({ err: e }, 'dropping a malformed event');
    }
  }

  private async connect(attempt = 0): Promise<void> {
    if (this.stopped) return;
    const client = this.logical
      ? new Client({ connectionString: this.logical.ownerUrl, application_name: 'credits-events', replication: 'database' } as ConstructorParameters<typeof Client>[0])
      : new Client({ connectionString: this.url, application_name: 'credits-events' });
    client.on('notification', (msg) => {
      if (msg.channel === EVENTS_CHANNEL && msg.payload) this.receive(msg.payload);
    });
    client.on('error', (err) => {
      this.log.warn({ err: err.message }, 'event listener connection lost');
      this.scheduleReconnect(client, 0);
    });
    client.on('end', () => this.scheduleReconnect(client, 0));
    try {
      await client.connect();
      let slot: string | undefined;
      if (this.logical) {
        // A replication connection: the slot is temporary (it goes with this connection) and is streamed, decoded once.
        slot = `credits_events_${randomBytes(6).toString('hex')}`;
        await client.query(`CREATE_REPLICATION_SLOT ${slot} TEMPORARY LOGICAL pgoutput`);
      } else {
        await client.query(`LISTEN ${EVENTS_CHANNEL}`);
      }
      this.client = client;
      if (attempt > 0) this.log.info('event listener reconnected');
      // The current balances first (SQL on this connection), then the stream: the slot holds
      // what committed meanwhile, so nothing between them is lost, and nothing comes before them.
      const again = this.listened;
      if (again) await this.resync(client);
      if (slot) this.stream(client, slot);
      this.readyResolve?.();
      this.listened = true;
      if (again) for (const l of this.reconnectListeners) l();
    } catch (e) {
      client.removeAllListeners('end');
      client.end().catch(() => undefined);
      if (this.stopped) return;
      if (attempt === 0 && !this.client) throw e;
      this.scheduleReconnect(client, attempt + 1);
    }
  }

  private scheduleReconnect(from: Client, attempt: number): void {
    if (this.stopped || this.reconnectTimer) return;
    if (this.client && this.client !== from) return;
    this.client = undefined;
    from.removeAllListeners('end');
    from.end().catch(() => undefined);
    const delay = Math.min(2000, 100 * 2 ** attempt);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connect(Math.max(1, attempt)).catch(() => this.scheduleReconnect(from, attempt + 1));
    }, delay);
  }

  /**
   * Streams the slot (START_REPLICATION): PostgreSQL sends each transaction's messages at its
   * commit, in commit order, decoding the WAL once. The position received is confirmed back
   * (standby status updates: when the server asks, and every few seconds), so the slot lets go
   * of the WAL behind it.
   */
  private stream(client: Client, slot: string): void {
    const connection = (client as unknown as { connection: StreamConnection }).connection;
    let received = 0n;
    const confirm = (reply = false) => {
      const b = Buffer.alloc(34);
      b.write('r', 0);
      for (const at of [1, 9, 17]) b.writeBigUInt64BE(received, at);
      b.writeBigInt64BE(BigInt(Date.now() - PG_EPOCH_MS) * 1000n, 25);
      b.writeUInt8(reply ? 1 : 0, 33);
      connection.sendCopyFromChunk(b);
    };
    const visible = new VisibleCommits(this.url, (payload) => this.receive(payload), this.log);
    let current: { xid: number; payloads: string[] } | undefined;
    connection.on('copyData', ({ chunk }: { chunk: Buffer }) => {
      if (chunk[0] === 0x77) {
        // XLogData: 'w', start, end, send time (8 bytes each), then the pgoutput message.
        const end = chunk.readBigUInt64BE(9);
        if (end > received) received = end;
        const data = chunk.subarray(25);
        if (data[0] === 0x42) current = { xid: data.readUInt32BE(17), payloads: [] }; // Begin: final LSN, commit time, xid
        else if (data[0] === 0x43) {
          // Commit: its events go on once the transaction is visible to other sessions.
          if (current?.payloads.length) visible.add(current.xid, current.payloads);
          current = undefined;
        } else {
          const payload = messageOf(data);
          if (payload !== undefined) {
            if (current) current.payloads.push(payload);
            else this.receive(payload);
          }
        }
      } else if (chunk[0] === 0x6b) {
        // Keepalive: 'k', the server's WAL end, its time, and whether it wants an answer now.
        const end = chunk.readBigUInt64BE(1);
        if (end > received) received = end;
        if (chunk[17] === 1) confirm();
      }
    });
    const timer = setInterval(() => {
      if (this.client !== client) return clearInterval(timer);
      try {
        confirm();
      } catch {
        clearInterval(timer);
      }
    }, 5_000);
    timer.unref();
    client
      .query(`START_REPLICATION SLOT ${slot} LOGICAL 0/0 (proto_version '1', publication_names 'credits_events', messages 'true')`)
      .catch((e: Error) => {
        clearInterval(timer);
        void visible.close();
        if (this.stopped || this.client !== client) return;
        this.log.warn({ err: e.message }, 'event stream ended');
        this.scheduleReconnect(client, 0);
      });
  }

  /** After a reconnect: each local balance subscriber gets its account's current balance. */
  private async resync(listener: Client): Promise<void> {
    // A replication connection takes no parameterised SQL: the read goes on a connection of its own.
    const client = this.logical ? new Client({ connectionString: this.url, application_name: 'credits-events-resync' }) : listener;
    const accounts = this.topics.topics().filter((t) => t.startsWith(BALANCE_TOPIC)).map((t) => t.slice(BALANCE_TOPIC.length));
    if (!accounts.length) return;
    this.held = [];
    try {
      if (client !== listener) await client.connect();
      const { rows } = await client.query<{ id: string; available: number; low_credit_threshold: number }>(
        'SELECT id, available, low_credit_threshold FROM accounts WHERE id = ANY($1)',
        [accounts],
      );
      for (const r of rows) {
        this.dispatch({ type: 'balance', accountId: r.id, available: Number(r.available), lowCreditThreshold: Number(r.low_credit_threshold) });
      }
      this.log.info({ accounts: rows.length }, 'event listener reconnected: sent current balances to their subscribers');
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'could not send current balances after the event listener reconnected');
    } finally {
      if (client !== listener) await client.end().catch(() => undefined);
      const held = this.held;
      this.held = undefined;
      for (const e of held) this.dispatch(e);
    }
  }

  private readonly listeners = new Set<(e: DomainEvent) => void>();
  private readonly received = new WeakMap<DomainEvent, number>();

  /** When this instance received the event's notification (performance.now()); undefined for events not from a notification. */
  receivedAt(event: DomainEvent): number | undefined {
    return this.received.get(event);
  }

  /** Delivers an event to this instance's subscribers of its account, and to internal listeners. */
  dispatch(event: DomainEvent): void {
    this.pubSub.publish(`${event.type}:${event.accountId}`, event);
    for (const l of this.listeners) l(event);
  }

  /** Internal consumers (caches, the simulated worker) that want every event. */
  onEvent(listener: (e: DomainEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private readonly reconnectListeners = new Set<() => void>();

  /** Told each time the listener is back after a loss (events committed while it was away were not received). */
  onReconnect(listener: () => void): () => void {
    this.reconnectListeners.add(listener);
    return () => this.reconnectListeners.delete(listener);
  }

  /** Live local subscriptions to one kind of event of one account (tests wait on it instead of on time). */
  subscribers(type: EventType, accountId: string): number {
    return this.topics.count(`${type}:${accountId}`);
  }

  subscribe<T extends EventType>(type: T, accountId: string): AsyncIterable<Extract<DomainEvent, { type: T }>> {
    return this.pubSub.subscribe(`${type}:${accountId}`) as AsyncIterable<Extract<DomainEvent, { type: T }>>;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const c = this.client;
    this.client = undefined;
    if (c) {
      c.removeAllListeners('end');
      await c.end().catch(() => undefined);
    }
  }
}
