/**
 * The events of `source` that pass an async test, in order (each is tested before the next is
 * taken). An iterator object, so an unsubscribe lets go of the source at once.
 */
export function filterAsync<T>(source: AsyncIterable<T>, keep: (e: T) => Promise<boolean>): AsyncIterableIterator<T> {
  const it = source[Symbol.asyncIterator]();
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    async next(): Promise<IteratorResult<T>> {
      for (;;) {
        const r = await it.next();
        if (r.done || (await keep(r.value).catch(() => false))) return r;
      }
    },
    return: async () => {
      await it.return?.();
      return { value: undefined, done: true };
    },
  };
}
