import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import type { Client } from 'graphql-ws';
import { eventually } from './test-app';

export interface Subscription<T> {
  events: T[];
  errors: unknown[];
  client: Client;
  /** The server ended it (complete). */
  readonly completed: boolean;
  /** Resolves once `n` events arrived. */
  waitFor(n: number, ms?: number): Promise<T[]>;
  /** Ends this subscription only. */
  unsubscribe(): void;
  /** Ends the subscription and closes its client. */
  dispose(): Promise<void>;
}

/** Subscribes through graphql-ws and records every event. */
export function subscribe<T, V>(client: Client, doc: TypedDocumentNode<T, V>, variables?: V): Subscription<T> {
  const events: T[] = [];
  const errors: unknown[] = [];
  let completed = false;
  const unsubscribe = client.subscribe<T>(
    { query: print(doc), variables: variables as Record<string, unknown> | undefined },
    { next: (v) => (v.errors ? errors.push(v.errors) : events.push(v.data as T)), error: (e) => errors.push(e), complete: () => (completed = true) },
  );
  return {
    events,
    errors,
    client,
    get completed() {
      return completed;
    },
    async waitFor(n, ms = 5000) {
      await eventually(() => events.length >= n || errors.length > 0, ms);
      if (errors.length) throw new Error(`subscription failed: ${JSON.stringify(errors)}`);
      return events.slice(0, n);
    },
    unsubscribe,
    async dispose() {
      unsubscribe();
      await client.dispose();
    },
  };
}

/**
 * A subscription is live once the server has registered it, which the client cannot see.
 * `poke` makes a change that produces an event; it is repeated until one arrives, then the
 * recorded events are cleared.
 */
export async function untilLive<T>(sub: Subscription<T>, poke: () => Promise<unknown>, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (sub.events.length === 0) {
    if (sub.errors.length) throw new Error(`subscription failed: ${JSON.stringify(sub.errors)}`);
    if (Date.now() > until) throw new Error('subscription never became live');
    await poke();
    await new Promise((r) => setTimeout(r, 30));
  }
  sub.events.length = 0;
}
