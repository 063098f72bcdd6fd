/**
 * A workspace subscription that ends the moment its member is removed from the workspace (the
 * `membership` event of the removal's commit, on every instance): a removed member loses access
 * at once, open subscriptions included. An iterator object, so that an unsubscribe lets go of
 * the source and the listener at once.
 */
import type { DomainEvent } from './events';

export function untilRemoved<T>(
  source: AsyncIterable<T>,
  onEvent: (listener: (e: DomainEvent) => void) => () => void,
  workspaceId: string,
  member: string,
): AsyncIterableIterator<T> {
  const it = source[Symbol.asyncIterator]();
  let done = false;
  let removed!: () => void;
  const removal = new Promise<void>((r) => (removed = r));
  const stopListening = onEvent((e) => {
    if (e.type === 'membership' && e.removed && e.accountId === workspaceId && e.member === member) removed();
  });
  const end = async (): Promise<IteratorResult<T>> => {
    if (!done) {
      done = true;
      stopListening();
      removed();
      await it.return?.();
    }
    return { value: undefined, done: true };
  };
  void removal.then(() => end());
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    async next(): Promise<IteratorResult<T>> {
      if (done) return { value: undefined, done: true };
      const r = await Promise.race([it.next(), removal.then(() => ({ value: undefined, done: true }) as IteratorResult<T>)]);
      if (r.done) return end();
      return r;
    },
    return: end,
    throw: async (e: unknown) => {
      await end();
      throw e;
    },
  };
}
