/**
 * A subscription that starts with the value as it is now, so a client that (re)subscribes is
 * never left with what it saw before a network drop. It listens first and reads second, so no
 * change committed after the read is missed; an event of a change the read already saw is
 * skipped when it equals what was sent last. (One committed just before the read may still
 * follow it, older than the read: the events after it then bring the newest value, so the
 * last value a subscriber has is always the newest.)
 *
 * An iterator object rather than an async generator: a generator's return() waits for the
 * next event, so an unsubscribe would hold its listener (and its socket slot) until then.
 */
export function currentFirst<E>(
  source: AsyncIterable<E>,
  current: () => Promise<E | undefined>,
  same: (a: E, b: E) => boolean,
  keep: (e: E) => boolean = () => true,
): AsyncIterableIterator<E> {
  const it = source[Symbol.asyncIterator]();
  let pending: Promise<IteratorResult<E>> | undefined = it.next(); // listening from here on
  // A read that fails (the database restarting) sends no first value rather than ending the
  // subscription with a raw error; the changes still follow (and the event bus sends current
  // balances again once its connection is back).
  let initial: Promise<E | undefined> | undefined = current().catch(() => undefined);
  let last: E | undefined;
  let done = false;
  const end = async (): Promise<IteratorResult<E>> => {
    done = true;
    await it.return?.();
    return { value: undefined, done: true };
  };
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    async next(): Promise<IteratorResult<E>> {
      try {
        if (initial) {
          const now = await initial;
          initial = undefined;
          if (now !== undefined && !done) {
            last = now;
            return { value: now, done: false };
          }
        }
        for (;;) {
          if (done) return { value: undefined, done: true };
          const r = await (pending ?? it.next());
          pending = undefined;
          if (r.done || done) return end();
          if (!keep(r.value) || (last !== undefined && same(r.value, last))) continue;
          last = r.value;
          return { value: r.value, done: false };
        }
      } catch (e) {
        await end();
        throw e;
      }
    },
    return: end,
  };
}
