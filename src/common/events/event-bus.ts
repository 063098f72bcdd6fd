/**
 * Each instance holds one dedicated connection that LISTENs on the events channel and fans
 * events out, in the order PostgreSQL delivered them, to the local subscribers of the account.
 * On a lost connection it reconnects with backoff.
 *
 * Notifications sent while no connection listened (the database restarted, the network
 * dropped) are gone for good. So once it listens again, the bus tells every local balance
 * subscriber its account's current balance (a balance event that may repeat the last one);
 * notifications that arrive meanwhile are held and delivered after it, so the newest value
 * is the last one a subscriber sees.
 */
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

  constructor(private readonly url: string, private readonly log: Logger) {
    this.ready = new Promise((r) => (this.readyResolve = r));
  }

  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(attempt = 0): Promise<void> {
    if (this.stopped) return;
    const client = new Client({ connectionString: this.url, application_name: 'credits-events' });
    client.on('notification', (msg) => {
      if (msg.channel !== EVENTS_CHANNEL || !msg.payload) return;
      try {
        const event = JSON.parse(msg.payload) as DomainEvent;
        this.received.set(event, performance.now());
        if (this.held) this.held.push(event);
        else this.dispatch(event);
      } catch (e) {
        this.log.error({ err: e }, 'dropping a malformed event');
      }
    });
    client.on('error', (err) => {
      this.log.warn({ err: err.message }, 'event listener connection lost');
      this.scheduleReconnect(client, 0);
    });
    client.on('end', () => this.scheduleReconnect(client, 0));
    try {
      await client.connect();
      await client.query(`LISTEN ${EVENTS_CHANNEL}`);
      this.client = client;
      this.readyResolve?.();
      if (attempt > 0) this.log.info('event listener reconnected');
      if (this.listened) await this.resync(client);
      this.listened = true;
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

  /** After a reconnect: each local balance subscriber gets its account's current balance. */
  private async resync(client: Client): Promise<void> {
    const accounts = this.topics.topics().filter((t) => t.startsWith(BALANCE_TOPIC)).map((t) => t.slice(BALANCE_TOPIC.length));
    if (!accounts.length) return;
    this.held = [];
    try {
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
