/** Runs the real entry point (src/main.ts) as a child process, as `npm start` does. */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { asRuntimeRole } from './test-app';

const ROOT = path.resolve(__dirname, '..', '..');

export interface ServiceProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves when the output matches, rejects when the process exits first or time runs out. */
  waitFor(pattern: RegExp, ms?: number): Promise<RegExpMatchArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `compiled`: run dist/src/main.js (built by `tsc -p tsconfig.build.json`), which starts in a fraction of the time. */
export function startService(env: Record<string, string | undefined>, opts: { compiled?: boolean; nodeArgs?: string[] } = {}): ServiceProcess {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...env })) {
    if (v !== undefined && !k.startsWith('JEST') && k !== 'NODE_OPTIONS') clean[k] = v;
  }
  for (const k of ['DATABASE_URL', 'DATABASE_OWNER_URL', 'JWT_SECRET', 'NODE_ENV', 'PAYMENT_PROVIDER', 'TEST_CLOCK_START']) if (!(k in env)) delete clean[k];
  // A test database's (owner) URL: the service migrates as the owner and runs as the runtime role.
  if (clean.DATABASE_URL && !('DATABASE_OWNER_URL' in env) && asRuntimeRole(clean.DATABASE_URL) !== clean.DATABASE_URL) {
    clean.DATABASE_OWNER_URL = clean.DATABASE_URL;
    clean.DATABASE_URL = asRuntimeRole(clean.DATABASE_URL);
  }
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), ...(opts.compiled ? ['dist/src/main.js'] : ['-r', 'ts-node/register/transpile-only', 'src/main.ts'])], {
    cwd: ROOT,
    env: clean,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    output: () => out,
    exited,
    waitFor(pattern, ms = 60000) {
      return new Promise((resolve, reject) => {
        const started = Date.now();
        const tick = () => {
          const m = out.match(pattern);
          if (m) return resolve(m);
          if (child.exitCode !== null) return reject(new Error(`exited (${child.exitCode}) before ${pattern}:\n${out}`));
          if (Date.now() - started > ms) return reject(new Error(`timed out waiting for ${pattern}:\n${out}`));
          setTimeout(tick, 25);
        };
        tick();
      });
    },
  };
}
