import { Batcher } from '../src/common/batcher';

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('Batcher', () => {
  it('runs a task alone when idle, and sends what arrives meanwhile as the next batch', async () => {
    const batches: number[][] = [];
    const b = new Batcher<number, number>(async (tasks) => {
      batches.push(tasks);
      await tick();
      return tasks.map((t) => t * 10);
    }, { concurrency: 1 });
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
    }, { concurrency: 2, maxSize: 3 });
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
    }, { concurrency: 1 });
    const first = b.submit(1);
    const rest = [12, 13, 14].map((n) => b.submit(n).then((v) => v, (e: Error) => `error: ${e.message}`));
    expect(await first).toBe('1');
    expect(await Promise.all(rest)).toEqual(['12', 'error: unlucky', '14']);
    expect(calls).toEqual([[1], [12, 13, 14], [12], [13], [14]]);
  });

  it('never runs one key in two batches at once, and keeps arrival order within a key', async () => {
    const batches: string[][] = [];
    const b = new Batcher<string, string>(async (tasks) => {
      batches.push(tasks);
      await tick();
      return tasks;
    }, { concurrency: 2, keyOf: (t) => t[0] });
    await Promise.all(['a1', 'a2', 'b1', 'a3', 'c1'].map((t) => b.submit(t)));
    // a1 runs alone; a2 must wait for it, so the second slot takes b1; a2, a3 and c1 leave together after a1.
    expect(batches).toEqual([['a1'], ['b1'], ['a2', 'a3', 'c1']]);
  });
});
