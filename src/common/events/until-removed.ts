/**
 * A workspace subscription that ends the moment its member is removed from the workspace (the
 * `membership` event of the removal's commit, on every instance): a removed member loses access
 * at once, open subscriptions included. It listens on the workspace's own membership topic, so
 * an event costs nothing to the subscriptions of other workspaces. An iterator object, so that
 * an unsubscribe lets go of the source and of that topic at once.
 */
import type { MembershipEvent } from './events';

export function untilRemoved<T>(
  source: AsyncIterable<T>,
  memberships: AsyncIterable<MembershipEvent>,
  member: string,
): AsyncIterableIterator<T> {
  const it = source[Symbol.asyncIterator]();
  const changes = memberships[Symbol.asyncIterator]();
  let done = false;
  let removed!: () => void;
  const removal = new Promise<void>((r) => (removed = r));
  void (async () => {
    try {
      for (;;) {
        const r = await changes.next();
        if (r.done) return;
        if (r.value.removed && r.value.member === member) return removed();
      }
    } catch {
      /* the topic ended: nothing to watch */
    }
  })();
  const end = async (): Promise<IteratorResult<T>> => {
    if (!done) {
      done = true;
      removed();
      await Promise.all([it.return?.(), changes.return?.()]);
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
