/**
 * One model-based property: fast-check command sequences run against the real API on fresh
 * accounts, each run compared with a new model (model.test.ts runs it, and the soak runs it
 * again and again). `around` wraps every run (the soak holds a database restart back while a
 * run is in progress); commandsRun() counts the commands executed so far.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { assertLedgerInvariants } from '../../helpers/invariants';
import type { TestApp } from '../../helpers/test-app';
import { ACCOUNTS, commandArbs, executed } from './commands';
import { newModel, type Catalog, type Model } from './model';
import { checkAll, cleanup, Real } from './system';

const processTag = randomBytes(3).toString('hex');
let runNo = 0;

export function totalExecuted(): number {
  return [...executed.values()].reduce((s, n) => s + n, 0);
}

export function modelProperty(
  app: TestApp,
  catalog: Catalog,
  opts: { maxCommands: number; replayPath?: string; around?: <T>(run: () => Promise<T>) => Promise<T> },
): fc.IAsyncPropertyWithHooks<[Iterable<fc.AsyncCommand<Model, Real>>]> {
  const around = opts.around ?? ((run) => run());
  return fc.asyncProperty(fc.commands(commandArbs(), { maxCommands: opts.maxCommands, size: 'max', replayPath: opts.replayPath }), (cmds) =>
    around(async () => {
      const tag = `${processTag}-${++runNo}`;
      const ids = Array.from({ length: ACCOUNTS }, (_, i) => `model-${tag}-${i}`);
      const real = new Real(app, tag);
      // Open the accounts first (sign-up bonus), so that no later lot shares their millisecond.
      for (const sub of ids) await real.data(`query { me { id } }`, undefined, { sub });
      const model: Model = newModel(catalog, ids);
      await checkAll(model, real, 'opening the accounts');
      try {
        await fc.asyncModelRun(() => ({ model, real }), cmds);
      } finally {
        await cleanup(real, ids);
      }
      await assertLedgerInvariants(app.audit);
    }),
  );
}
