/**
 * Each instance holds one dedicated connection that LISTENs on the events channel and fans
 * events out, in the order PostgreSQL delivered them, to the local subscribers of the account.
 * On a lost connection it reconnects with backoff.
 */
import { createPubSub } from '@graphql-yoga/subscription';
import { Client } from 'pg';
import type { Logger } from 'pino';
import { EVENTS_CHANNEL, type DomainEvent, type EventType } from './events';

type Topics = Record<string, [DomainEvent]>;

export class EventBus {
  private readonly pubSub = createPubSub<Topics>();
  private client?: Client;
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
        this.dispatch(JSON.parse(msg.payload) as DomainEvent);
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

  private readonly listeners = new Set<(e: DomainEvent) => void>();

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
