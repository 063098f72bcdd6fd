/**
 * Subscriptions that share their work. graphql-js runs a subscription's selection once per
 * subscriber for every event; here an event's result is computed once per distinct operation —
 * the same parsed document (the gate keeps one per query text), the same variables and
 * operation name, asked by the same caller in the same role — and that one result goes to every
 * such subscriber on this instance. Ten tabs of one user on balanceChanged cost one execution per
 * change, not ten. The event objects the bus dispatches are shared by all local subscribers of
 * a topic, so a WeakMap on them holds each result exactly as long as the event lives.
 */
import { createSourceEventStream, execute, type DocumentNode, type ExecutionArgs, type ExecutionResult } from 'graphql';

export interface SharedSubscribe {
  (args: ExecutionArgs): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult>;
  /** Executions run (for tests and metrics: how much was shared). */
  readonly executions: () => number;
}

/** `callerOf`: who asks, from the operation's context (its identity); undefined: never shared. */
export function sharedSubscribe(callerOf: (contextValue: unknown) => string | undefined): SharedSubscribe {
  const results = new WeakMap<object, Map<string, ExecutionResult | Promise<ExecutionResult>>>();
  const documents = new WeakMap<DocumentNode, number>();
  let nextDocument = 0;
  let executions = 0;
  const run = (args: ExecutionArgs, event: unknown) => {
    executions++;
    return execute({ ...args, rootValue: event });
  };

  const subscribe = async (args: ExecutionArgs) => {
    const source = await createSourceEventStream(args);
    if (!isAsyncIterable(source)) return source; // refused before it started: its errors
    const caller = callerOf(args.contextValue);
    let doc = documents.get(args.document);
    if (doc === undefined) documents.set(args.document, (doc = nextDocument++));
    const key = caller === undefined ? undefined : JSON.stringify([doc, args.operationName ?? null, args.variableValues ?? null, caller]);
    return mapped(source as AsyncIterable<unknown>, (event) => {
      if (key === undefined || typeof event !== 'object' || event === null) return run(args, event);
      let byKey = results.get(event);
      if (!byKey) results.set(event, (byKey = new Map()));
      let result = byKey.get(key);
      if (!result) byKey.set(key, (result = run(args, event)));
      return result;
    });
  };
  return Object.assign(subscribe, { executions: () => executions });
}

function isAsyncIterable(x: unknown): x is AsyncIterable<unknown> {
  return typeof x === 'object' && x !== null && Symbol.asyncIterator in x;
}

/** `source` mapped by `f`, an iterator object whose return() lets go of the source at once. */
function mapped<T, R>(source: AsyncIterable<T>, f: (value: T) => R | Promise<R>): AsyncIterableIterator<R> {
  const it = source[Symbol.asyncIterator]();
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    async next(): Promise<IteratorResult<R>> {
      const r = await it.next();
      if (r.done) return { value: undefined, done: true };
      return { value: await f(r.value), done: false };
    },
    async return(): Promise<IteratorResult<R>> {
      await it.return?.();
      return { value: undefined, done: true };
    },
    async throw(e: unknown): Promise<IteratorResult<R>> {
      await it.return?.();
      throw e;
    },
  };
}
