/**
 * What a live event's payload needs from the database is read once per event on an instance,
 * however many subscribers resolve it: the event bus hands every local subscriber of a topic
 * the very same event object (one JSON.parse per notification, one pub/sub publish), so the
 * promise of each read is kept against that object, and every subscriber awaits the same one.
 *
 * The reads live as long as the event does (a WeakMap): once no subscriber holds the event any
 * more, its reads go with it. A read that fails is dropped at once, so a subscriber that takes
 * the event later reads again rather than inheriting the failure. A value read here is shared:
 * callers copy it (fromRow, a spread) rather than change it.
 */
const reads = new WeakMap<object, Map<string, Promise<unknown>>>();

/**
 * The result of `read` for `event`: the first caller for this event and `what` starts it, the
 * others share its promise. `what` names the read (one event may need several); `read` must
 * depend on the event only, never on the subscriber (its arguments, its context).
 */
export function readOnce<T>(event: object, what: string, read: () => Promise<T>): Promise<T> {
  const known = readsOf(event);
  const shared = known.get(what) as Promise<T> | undefined;
  if (shared) return shared;
  const started = (async () => read())(); // a read that throws at once fails like one that rejects
  known.set(what, started);
  started.catch(() => {
    if (known.get(what) === started) known.delete(what);
  });
  return started;
}

function readsOf(event: object): Map<string, Promise<unknown>> {
  let known = reads.get(event);
  if (!known) reads.set(event, (known = new Map()));
  return known;
}
