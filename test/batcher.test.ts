import { Batcher } from '../src/common/batcher';

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('Batcher', () => {
  it('runs a task alone when idle, and sends what arrives meanwhile as the next batch', async () => {
    const batches: number[][] = [];
    const b = new Batcher<number, number>(async (tasks) => {
      batches.push(tasks);
      await tick();
      return tasks.map((t) => t * 10);
    }, 1, 32);
    const results = await Promise.all([1, 2, 3, 4].map((n) => b.submit(n)));
    expect(results).toEqual([10, 20, 30, 40]);
    expect(batches).toEqual([[1], [2, 3, 4]]);
  });

  it('keeps at most `concurrency` batches running and at most `maxSize` tasks in one', async () => {
    let running = 0;
    let peak = 0;
    const sizes: number[] = [];
    const b = new Batcher<number, number>(async (tasks) => {
      running++;
      peak = Math.max(peak, running);
      sizes.push(tasks.length);
      await tick();
      running--;
      return tasks;
    }, 2, 3);
    await Promise.all(Array.from({ length: 11 }, (_, i) => b.submit(i)));
    expect(peak).toBe(2);
    expect(sizes).toEqual([1, 1, 3, 3, 3]);
  });

  it('runs the tasks of a failed batch again one by one, so only the bad task fails', async () => {
    const calls: number[][] = [];
    const b = new Batcher<number, string>(async (tasks) => {
      calls.push(tasks);
      await tick();
      if (tasks.includes(13)) throw new Error('unlucky');
      return tasks.map(String);
    }, 1, 32);
    const first = b.submit(1);
    const rest = [12, 13, 14].map((n) => b.submit(n).then((v) => v, (e: Error) => `error: ${e.message}`));
    expect(await first).toBe('1');
    expect(await Promise.all(rest)).toEqual(['12', 'error: unlucky', '14']);
    expect(calls).toEqual([[1], [12, 13, 14], [12], [13], [14]]);
  });
});
