import { KeyedQueue } from '../src/common/keyed-queue';

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('KeyedQueue', () => {
  it('runs at most the limit per key, in arrival order, and keys do not wait on each other', async () => {
    const q = new KeyedQueue(2);
    let running = 0;
    let peak = 0;
    const order: string[] = [];
    const task = (name: string) => async () => {
      running++;
      peak = Math.max(peak, running);
      order.push(name);
      await tick();
      running--;
      return name;
    };
    const results = await Promise.all([
      q.run('a', task('a1')), q.run('a', task('a2')), q.run('a', task('a3')), q.run('a', task('a4')), q.run('b', task('b1')),
    ]);
    expect(results).toEqual(['a1', 'a2', 'a3', 'a4', 'b1']);
    expect(peak).toBe(3); // two of key a and one of key b
    expect(order.filter((n) => n.startsWith('a'))).toEqual(['a1', 'a2', 'a3', 'a4']);
  });

  it('lets the next task run after one fails', async () => {
    const q = new KeyedQueue(1);
    const failing = q.run('k', async () => {
      throw new Error('boom');
    });
    const next = q.run('k', async () => 'ran');
    await expect(failing).rejects.toThrow('boom');
    await expect(next).resolves.toBe('ran');
  });
});
