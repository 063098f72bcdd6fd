/**
 * What a clean answer to hostile input is, shared by the hostile-input test and the soak:
 * the codes a refusal may carry, what an answer must never contain, and the check of one
 * answer (no 5xx, JSON, known codes, no stack, SQL, table or engine text once the caller's own
 * strings are taken out).
 */

/** Codes a refusal may carry; anything else (INTERNAL_SERVER_ERROR above all) is a finding. */
export const ALLOWED_CODES = new Set([
  'BAD_USER_INPUT',
  'BAD_REQUEST',
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_FOUND',
  'INVALID_STATE',
  'OPERATION_TOO_COSTLY',
  'OPERATION_RESOLUTION_FAILURE',
  'TOO_MANY_SUBSCRIPTIONS',
  'PERSISTED_QUERY_NOT_FOUND',
]);

/** What a response must never contain: stacks, file paths, SQL, driver or engine messages. */
export const LEAK =
  /\bat [\w.<>$]+ \(|node_modules|\/work\/|[\w-]+\.[jt]s:\d+|stacktrace|QueryFailed|TypeORM|driverError|SQLSTATE|syntax error at or near|invalid input syntax|violates|duplicate key|out of range for type|invalid byte sequence|relation "|column "|current transaction is aborted|Maximum call stack|Cannot read propert|is not a function|\(reading '|ECONNREFUSED|Unexpected token|Unexpected end of JSON|\bpg_\w+|\b(FROM|INTO|UPDATE|JOIN)\s+"?(accounts|purchases|notifications|quotes|tiers)\b|vanished|Internal server error/i;

/** The application's table names (those with an underscore), as a pattern a response must not match. */
export function tableNamePattern(names: string[]): RegExp {
  return new RegExp(`\\b(${names.join('|')})\\b`); // lower case: TEST_CLOCK the setting is not test_clock the table
}

export interface Answer {
  transport: 'http' | 'ws';
  status: number;
  text: string;
  body?: { data?: Record<string, unknown> | null; errors?: { message: string; extensions?: Record<string, unknown> }[] };
  closeCode?: number;
}

/** True when an answer refuses: an error, a null root, or userErrors anywhere. */
export function refusedIn(data: unknown, errors: unknown[] | undefined): boolean {
  if (errors?.length) return true;
  if (!data || typeof data !== 'object') return true;
  const stack: unknown[] = [data];
  while (stack.length) {
    const v = stack.pop();
    if (v === null) continue;
    if (Array.isArray(v)) stack.push(...v);
    else if (typeof v === 'object') {
      for (const [k, x] of Object.entries(v as object)) {
        if (k === 'userErrors' && Array.isArray(x) && x.length) return true;
        stack.push(x);
      }
    }
  }
  return Object.values(data as object).some((x) => x === null);
}

/** Removes the caller's own strings from a response so an echo of the input is not a leak. */
export function withoutEcho(text: string, sent: string[]): string {
  let out = text;
  for (const s of sent.sort((a, b) => b.length - a.length)) {
    if (s.length < 3) continue;
    const escaped = JSON.stringify(s).slice(1, -1);
    out = out.split(escaped).join('').split(s).join('');
    // graphql-js quotes values inside messages: "…" within a JSON string becomes \"…\"
    out = out.split(JSON.stringify(escaped).slice(1, -1)).join('');
  }
  return out;
}

/** Why an answer is not clean (empty: it is). `sent`: every string the request carried. */
export function findingsOf(o: Answer, sent: string[], tables: RegExp, payloadBytes = 0, allowed: Set<string> = ALLOWED_CODES): string[] {
  const reasons: string[] = [];
  const fail = (why: string) => reasons.push(why);
  if (o.status >= 500) fail(`status ${o.status}`);
  if (o.transport === 'http' && !o.body) fail('the body is not JSON');
  if (o.transport === 'ws' && o.closeCode !== undefined) {
    const tooBig = o.closeCode === 1009 && payloadBytes > 60 * 1024;
    if (!tooBig && ![4400, 4401, 4403].includes(o.closeCode)) fail(`socket closed with ${o.closeCode}`);
  }
  const clean = withoutEcho(o.text, sent);
  const leak = clean.match(LEAK) ?? clean.match(tables);
  if (leak) fail(`leaks "${leak[0]}"`);
  for (const e of o.body?.errors ?? []) {
    const code = e.extensions?.code as string | undefined;
    if (!code) fail(`an error without a code: ${e.message}`);
    else if (!allowed.has(code)) fail(`error code ${code}`);
    if (e.extensions && 'stacktrace' in e.extensions) fail('a stacktrace extension');
  }
  return [...new Set(reasons)];
}

/** The money state in one value (column d): ledger entries, balances, lots, jobs and purchases. A refusal must leave it as it was. */
export const MONEY_STATE_SQL = `
      SELECT concat_ws('|',
        (SELECT count(*) || ':' || coalesce(max(id), 0) || ':' || coalesce(sum(amount), 0) FROM ledger_entries),
        (SELECT md5(coalesce(string_agg(id || '=' || available, ',' ORDER BY id), '')) FROM accounts),
        (SELECT md5(coalesce(string_agg(id || '=' || remaining, ',' ORDER BY id), '')) FROM credit_lots),
        (SELECT md5(coalesce(string_agg(id || '=' || status || refunded, ',' ORDER BY id), '')) FROM generation_jobs),
        (SELECT md5(coalesce(string_agg(id || '=' || status, ',' ORDER BY id), '')) FROM purchases)) AS d`;

/** Which caller a field is meant for, read from a root field's description ("Worker: …", "… admin …"). */
export function intendedRole(site: { field: { description?: string | null } }, id: string): 'user' | 'admin' | 'worker' {
  const d = site.field.description ?? '';
  if (id.startsWith('Query.') || id.startsWith('Mutation.') || id.startsWith('Subscription.')) {
    if (/^Worker\b/.test(d)) return 'worker';
    if (/\badmin\b/i.test(d)) return 'admin';
  }
  return 'user';
}
