/**
 * npm run bench:events — what sending live events costs the ledger's own commits (issue 16).
 * pgbench runs the real `ledger_debit` (prepared, 32 clients, 200 accounts) in interleaved
 * rounds, each with one way for ledger_balance_event to send its event:
 *   notify   pg_notify in the transaction (today's: PostgreSQL takes one server-wide lock for
 *            every notifying commit);
 *   none     no event at all (the ceiling);
 *   message  pg_logical_emit_message(transactional) — a WAL record decoded at commit, in commit
 *            order, by a logical decoding reader; no lock at commit.
 * Prints tps per way and round, and the ratios to `notify`. The function is put back as its
 * file defines it at the end.
 */
import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { database, dropDatabase, ROOT } from './support';

const CLIENTS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const ACCOUNTS = Number(process.env.BENCH_ACCOUNTS ?? 200);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

const FILE = readFileSync(path.join(ROOT, 'db/functions/ledger_balance_event.sql'), 'utf8');
const NOTIFY_CALL = /  PERFORM pg_notify\('credits_events', json_build_object\(\n    'type', 'balance', 'accountId', p_account, 'available', p_available, 'lowCreditThreshold', p_threshold\)::text\);\n/;
if (!NOTIFY_CALL.test(FILE)) throw new Error('ledger_balance_event.sql no longer sends its event as this bench expects');
const WAYS: Record<string, string> = {
  notify: FILE,
  none: FILE.replace(NOTIFY_CALL, ''),
  message: FILE.replace(
    NOTIFY_CALL,
    "  PERFORM pg_logical_emit_message(true, 'credits_events', json_build_object(\n    'type', 'balance', 'accountId', p_account, 'available', p_available, 'lowCreditThreshold', p_threshold)::text);\n",
  ),
};

function pgbench(url: string, file: string): number {
  const bin = ['pgbench', ...['18', '17', '16', '15'].map((v) => `/usr/lib/postgresql/${v}/bin/pgbench`)].find((b) => (b === 'pgbench' ? spawnSync('pgbench', ['--version']).status === 0 : existsSync(b)));
  if (!bin) throw new Error('pgbench not found (install postgresql-client / postgresql-contrib)');
  const u = new URL(url);
  const r = spawnSync(bin, ['-n', '-M', 'prepared', '-c', String(CLIENTS), '-j', '2', '-T', String(SECONDS), '-f', file, u.pathname.slice(1)], {
    env: { ...process.env, PGHOST: u.hostname, PGPORT: u.port, PGUSER: decodeURIComponent(u.username), PGPASSWORD: decodeURIComponent(u.password) },
    encoding: 'utf8',
  });
  const tps = /tps = ([\d.]+)/.exec(r.stdout);
  if (!tps) throw new Error(`pgbench failed:\n${r.stdout}\n${r.stderr}`);
  return Number(tps[1]);
}

async function main(): Promise<void> {
  const ids = Array.from({ length: ACCOUNTS }, (_, i) => `bench-${i}`);
  const db = await database(ids);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'credits-events-'));
  const script = path.join(dir, 'debit.sql');
  await writeFile(script, `\\set n random(0, ${ACCOUNTS - 1})\nSELECT ok FROM ledger_debit('bench-' || :n, 1, 'DEBIT', 'bench', NULL, NULL, NULL, NULL, now());\n`);
  const c = new Client({ connectionString: db.url });
  await c.connect();
  const tps: Record<string, number[]> = { notify: [], none: [], message: [] };
  process.stdout.write(`events bench: ledger_debit, ${CLIENTS} clients, ${ACCOUNTS} accounts, ${ROUNDS} rounds of ${SECONDS} s per way\n`);
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const way of Object.keys(WAYS)) {
        await c.query(WAYS[way].replace(/^(--[^\n]*\n)+/, ''));
        tps[way].push(pgbench(db.url, script));
        process.stdout.write(`  round ${round} ${way}: ${tps[way].at(-1)!.toFixed(0)} tps\n`);
      }
    }
  } finally {
    await c.query(WAYS.notify.replace(/^(--[^\n]*\n)+/, ''));
    await c.end();
    await rm(dir, { recursive: true, force: true });
    await dropDatabase(db);
  }
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  process.stdout.write('\n| way | tps (mean of rounds) | × notify |\n| --- | ---: | ---: |\n');
  for (const way of Object.keys(WAYS)) process.stdout.write(`| ${way} | ${mean(tps[way]).toFixed(0)} | ${(mean(tps[way]) / mean(tps.notify)).toFixed(2)} |\n`);
}

main().catch((e) => {
  process.stderr.write(`${e?.stack ?? e}\n`);
  process.exit(1);
});
