/**
 * Bounds what a slow subscriber can hold. The source is read as fast as events arrive; events
 * the subscriber has not taken yet wait here, and when they pass `maxBytes` (their JSON size)
 * `onOverflow` runs (the websocket is dropped) instead of memory growing.
 */
export function bounded<T>(source: AsyncIterable<T>, maxBytes: number, onOverflow: () => void): AsyncIterableIterator<T> {
  const queue: { value: T; size: number }[] = [];
  let bytes = 0;
  let done = false;
  let waiting: ((r: IteratorResult<T>) => void) | undefined;
  const iterator = source[Symbol.asyncIterator]();

  const finish = () => {
    done = true;
    queue.length = 0;
    bytes = 0;
    waiting?.({ value: undefined, done: true });
    waiting = undefined;
  };

  void (async () => {
    try {
      for (;;) {
        const r = await iterator.next();
        if (r.done || done) break;
        if (waiting) {
          const w = waiting;
          waiting = undefined;
          w({ value: r.value, done: false });
          continue;
        }
        const size = JSON.stringify(r.value)?.length ?? 0;
        queue.push({ value: r.value, size });
        bytes += size;
        if (bytes > maxBytes) {
          finish();
          await iterator.return?.();
          onOverflow();
          return;
        }
      }
    } catch {
      /* the source ended with an error: end quietly */
    }
    finish();
  })();

  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    next(): Promise<IteratorResult<T>> {
      const item = queue.shift();
      if (item) {
        bytes -= item.size;
        return Promise.resolve({ value: item.value, done: false });
      }
      if (done) return Promise.resolve({ value: undefined, done: true });
      return new Promise((resolve) => (waiting = resolve));
    },
    async return(): Promise<IteratorResult<T>> {
      finish();
      await iterator.return?.();
      return { value: undefined, done: true };
    },
  };
}
