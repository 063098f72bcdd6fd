/**
 * Walks the committed SDL (schema/schema.graphql) so the reliability tests cover every
 * argument the schema has, including ones added later: where each field with arguments sits,
 * a document that reaches it, its leaf input paths, and generators of valid and hostile values
 * for each input type.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import {
  buildSchema,
  getNamedType,
  getNullableType,
  isEnumType,
  isInputObjectType,
  isLeafType,
  isListType,
  isNonNullType,
  isObjectType,
  isScalarType,
  type GraphQLArgument,
  type GraphQLField,
  type GraphQLInputType,
  type GraphQLNamedType,
  type GraphQLObjectType,
  type GraphQLOutputType,
  type GraphQLSchema,
} from 'graphql';

export type OperationKind = 'query' | 'mutation' | 'subscription';

export const SCHEMA_PATH = path.resolve(__dirname, '..', '..', 'schema', 'schema.graphql');

export function loadSchema(): GraphQLSchema {
  return buildSchema(readFileSync(SCHEMA_PATH, 'utf8'));
}

/** A field that takes arguments, and how to reach it from a root operation. */
export interface ArgSite {
  /** `Type.field`, e.g. `Mutation.startGeneration` or `Account.ledger`. */
  id: string;
  operation: OperationKind;
  /** Root fields (without arguments) leading to the parent type; empty for root fields. */
  via: string[];
  field: GraphQLField<unknown, unknown>;
  args: readonly GraphQLArgument[];
}

function rootTypes(schema: GraphQLSchema): [OperationKind, GraphQLObjectType][] {
  const roots: [OperationKind, GraphQLObjectType | null | undefined][] = [
    ['query', schema.getQueryType()],
    ['mutation', schema.getMutationType()],
    ['subscription', schema.getSubscriptionType()],
  ];
  return roots.filter((r): r is [OperationKind, GraphQLObjectType] => !!r[1]);
}

/**
 * Every field with arguments: root fields directly, nested ones (Account.ledger, …) through the
 * shortest chain of argument-free query fields. A field that cannot be reached that way is
 * returned with `via` undefined so the caller's coverage check fails loudly.
 */
export function argumentSites(schema: GraphQLSchema): ArgSite[] {
  const sites: ArgSite[] = [];
  const rootSet = new Set(rootTypes(schema).map(([, t]) => t.name));
  for (const [operation, root] of rootTypes(schema)) {
    for (const field of Object.values(root.getFields())) {
      if (field.args.length) sites.push({ id: `${root.name}.${field.name}`, operation, via: [], field, args: field.args });
    }
  }
  // Shortest argument-free path from Query to each object type.
  const query = schema.getQueryType()!;
  const pathTo = new Map<string, string[]>([[query.name, []]]);
  const queue: GraphQLObjectType[] = [query];
  while (queue.length) {
    const t = queue.shift()!;
    for (const f of Object.values(t.getFields())) {
      if (f.args.some((a) => isNonNullType(a.type))) continue;
      const named = getNamedType(f.type);
      if (!isObjectType(named) || pathTo.has(named.name)) continue;
      pathTo.set(named.name, [...pathTo.get(t.name)!, f.name]);
      queue.push(named);
    }
  }
  for (const t of Object.values(schema.getTypeMap())) {
    if (!isObjectType(t) || t.name.startsWith('__') || rootSet.has(t.name)) continue;
    for (const field of Object.values(t.getFields())) {
      if (!field.args.length) continue;
      const via = pathTo.get(t.name);
      sites.push({ id: `${t.name}.${field.name}`, operation: 'query', via: via ?? (undefined as unknown as string[]), field, args: field.args });
    }
  }
  return sites;
}

/** Every root field of every operation type (with or without arguments). */
export function rootFields(schema: GraphQLSchema): { id: string; operation: OperationKind; field: GraphQLField<unknown, unknown> }[] {
  return rootTypes(schema).flatMap(([operation, t]) => Object.values(t.getFields()).map((field) => ({ id: `${t.name}.${field.name}`, operation, field })));
}

/** A selection set for `type`: its leaves, and objects below it down to `depth` levels. */
export function selectionFor(type: GraphQLOutputType, depth = 3): string {
  const named = getNamedType(type);
  if (isLeafType(named)) return '';
  if (!isObjectType(named)) return '{ __typename }';
  const parts: string[] = [];
  for (const f of Object.values(named.getFields())) {
    if (f.args.some((a) => isNonNullType(a.type))) continue;
    const inner = getNamedType(f.type);
    if (isLeafType(inner)) parts.push(f.name);
    else if (depth > 1) {
      const sub = selectionFor(f.type, depth - 1);
      if (sub) parts.push(`${f.name} ${sub}`);
    }
  }
  return parts.length ? `{ ${parts.join(' ')} }` : '{ __typename }';
}

/** One leaf input position: an argument, or a field inside an input object argument. */
export interface LeafPath {
  /** e.g. ['input', 'settings', 'width'] */
  path: string[];
  type: GraphQLInputType;
}

export function leafPaths(args: readonly GraphQLArgument[]): LeafPath[] {
  const out: LeafPath[] = [];
  const walk = (p: string[], type: GraphQLInputType, seen: Set<string>) => {
    const named = getNamedType(type);
    if (isInputObjectType(named) && !seen.has(named.name)) {
      out.push({ path: p, type }); // the object itself can be replaced too
      const next = new Set(seen).add(named.name);
      for (const f of Object.values(named.getFields())) walk([...p, f.name], f.type, next);
    } else out.push({ path: p, type });
  };
  for (const a of args) walk([a.name], a.type, new Set());
  return out;
}

/** The GraphQL type text of an input type, for a variable definition. */
export function typeText(type: GraphQLInputType): string {
  return type.toString();
}

// ---------------------------------------------------------------------------------------------
// Values

/** Strings that break naive code: control characters, odd Unicode, lengths, injection shapes. */
export const HOSTILE_STRINGS: string[] = [
  '',
  ' ',
  '\t\n\r',
  'a\u0000b',
  '\u0000',
  '\ud800',
  'x\udfffy',
  '\u202eevil\u202c',
  'مرحبا بالعالم',
  '👩‍👩‍👧‍👦🔥💳',
  'e\u0301\u0301\u0301\u0301',
  '\ufeff\u200b\u200d',
  '\uffff\ufffe',
  "' OR '1'='1",
  '1; DROP TABLE x; --',
  '$1',
  '%s%s%n%x',
  '{{7*7}}${7*7}',
  '../../etc/passwd',
  '<script>alert(1)</script>',
  '__proto__',
  'constructor',
  'null',
  'undefined',
  'NaN',
  'Infinity',
  '-0',
  '1e309',
  '0x7fffffff',
  '99999999999999999999999999',
  'A'.repeat(256),
  'B'.repeat(2001),
  'C'.repeat(20_000),
  '\\u0000',
  '\ud83d',
];

/** Numbers and look-alikes that an Int or Float argument must survive. */
export const HOSTILE_NUMBERS: unknown[] = [
  0, -1, 1, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 1e308, -1e308,
  1.5, -0.000001, 4.0000001, 'NaN', 'Infinity', '-Infinity', '1', '1.0', '0x10', '', true, null, [], [1], {}, { n: 1 },
];

/** Ids a caller might try: malformed, look-alike and random. Owned ids are added by the test. */
export function hostileIds(): string[] {
  return [
    randomUUID(),
    randomUUID().toUpperCase(),
    '00000000-0000-0000-0000-000000000000',
    'ffffffff-ffff-ffff-ffff-ffffffffffff',
    `${randomUUID()}x`,
    ` ${randomUUID()}`,
    randomUUID().replace(/-/g, ''),
    `{${randomUUID()}}`,
    '0',
    '-1',
    '1',
    '9223372036854775808',
    '1e309',
    'not-an-id',
    `${randomUUID()}\u0000`,
    'a'.repeat(129),
    'b'.repeat(5000),
    "'; SELECT 1; --",
  ];
}

export interface ValueContext {
  /** Extra ids to try in ID positions (other users' objects, own objects). */
  ids: string[];
}

function scalarValid(name: string, ctx: ValueContext): fc.Arbitrary<unknown> {
  switch (name) {
    case 'Int':
      return fc.oneof(fc.integer({ min: -5, max: 120 }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }));
    case 'Float':
      return fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 });
    case 'Boolean':
      return fc.boolean();
    case 'ID':
      return ctx.ids.length ? fc.oneof(fc.constantFrom(...ctx.ids), fc.uuid()) : fc.uuid();
    case 'DateTime':
      return fc.date({ min: new Date('1970-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }).map((d) => d.toISOString());
    default:
      return fc.string({ maxLength: 40 });
  }
}

/** Values of the right GraphQL type (not necessarily meaningful to the domain). */
export function validValue(type: GraphQLInputType, ctx: ValueContext, depth = 0): fc.Arbitrary<unknown> {
  if (isNonNullType(type)) return validValue(type.ofType, ctx, depth);
  const inner = (): fc.Arbitrary<unknown> => {
    if (isListType(type)) return fc.array(validValue(type.ofType as GraphQLInputType, ctx, depth + 1), { maxLength: 4 });
    if (isEnumType(type)) return fc.constantFrom(...type.getValues().map((v) => v.name));
    if (isScalarType(type)) {
      if (type.name === 'String') return fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom('a cat', 'STARTER', 'why not'));
      return scalarValid(type.name, ctx);
    }
    if (isInputObjectType(type)) {
      const fields = Object.values(type.getFields());
      const record: Record<string, fc.Arbitrary<unknown>> = {};
      const required: string[] = [];
      for (const f of fields) {
        record[f.name] = depth > 4 ? fc.constant(null) : validValue(f.type, ctx, depth + 1);
        if (isNonNullType(f.type) && f.defaultValue === undefined) required.push(f.name);
      }
      return fc.record(record, { requiredKeys: required });
    }
    return fc.constant(null);
  };
  return isNonNullType(type) ? inner() : fc.option(inner(), { freq: 6, nil: null });
}

/** Values a hostile client sends for this type: edge values, wrong types, odd shapes. */
export function hostileValue(type: GraphQLInputType, ctx: ValueContext): fc.Arbitrary<unknown> {
  const nullable = getNullableType(type) as GraphQLInputType;
  const named = getNamedType(type) as GraphQLNamedType;
  const wrongTypes = fc.constantFrom<unknown>(null, true, 0, -1, 1.5, 2 ** 53, '', 'x', [], [null], {}, { $ne: 1 }, '{"a":1}');
  const options: fc.Arbitrary<unknown>[] = [wrongTypes];
  if (isListType(nullable)) {
    const item = nullable.ofType as GraphQLInputType;
    options.push(
      fc.array(hostileValue(item, ctx), { maxLength: 5 }),
      fc.constant(Array.from({ length: 1500 }, () => randomUUID())),
      fc.constant([[['nested']]]),
      hostileValue(item, ctx), // a single value where a list is expected
    );
  } else if (isEnumType(named)) {
    const names = named.getValues().map((v) => v.name);
    options.push(fc.constantFrom(...names.map((n) => n.toLowerCase()), `${names[0]} `, 'UNKNOWN', '0', ...HOSTILE_STRINGS.slice(0, 8)));
  } else if (isInputObjectType(named)) {
    const fields = Object.values(named.getFields());
    options.push(
      fc.constant({}),
      fc.constant({ unknownField: 1 }),
      validValue(nullable, ctx).map((v) => ({ ...(v as object), unknownField: 'x' })),
      // each field in turn hostile, the rest valid
      fc.tuple(fc.constantFrom(...fields), validValue(nullable, ctx)).chain(([f, base]) =>
        hostileValue(f.type, ctx).map((bad) => ({ ...(base as object), [f.name]: bad })),
      ),
      fc.constant(fields.map((f) => f.name)), // a list of its field names
    );
  } else if (isScalarType(named)) {
    if (named.name === 'Int' || named.name === 'Float') options.push(fc.constantFrom(...HOSTILE_NUMBERS), fc.double());
    else if (named.name === 'ID') options.push(fc.constantFrom(...hostileIds(), ...ctx.ids), fc.constantFrom(...HOSTILE_STRINGS), fc.integer());
    else if (named.name === 'Boolean') options.push(fc.constantFrom('true', 'false', 0, 1, 'yes'));
    else options.push(fc.constantFrom(...HOSTILE_STRINGS), fc.string({ unit: 'binary', maxLength: 60 }), fc.string({ unit: 'grapheme', maxLength: 60 }), fc.string({ unit: 'binary-ascii', maxLength: 300 }));
  }
  return fc.oneof(...options);
}

/** Sets `value` at `path` inside args (creating objects along the way). */
export function setAt(args: Record<string, unknown>, p: string[], value: unknown): Record<string, unknown> {
  const copy: Record<string, unknown> = structuredClone(args);
  let cur: Record<string, unknown> = copy;
  for (const key of p.slice(0, -1)) {
    if (typeof cur[key] !== 'object' || cur[key] === null || Array.isArray(cur[key])) cur[key] = {};
    cur = cur[key] as Record<string, unknown>;
  }
  cur[p[p.length - 1]] = value;
  return copy;
}

/** All strings inside a value (to strip echoes of the input from a response before leak checks). */
export function stringsIn(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) v.forEach((x) => stringsIn(x, out));
  else if (v && typeof v === 'object') Object.entries(v).forEach(([k, x]) => (stringsIn(k, out), stringsIn(x, out)));
  return out;
}

/** A document calling the site with every argument from a variable `$<arg>`. */
export function documentFor(site: ArgSite, opts: { omit?: string[]; extraArgs?: string; extraSelection?: string; literal?: Record<string, string> } = {}): string {
  const args = site.args.filter((a) => !opts.omit?.includes(a.name));
  const defs = args.filter((a) => !opts.literal?.[a.name]).map((a) => `$${a.name}: ${typeText(a.type)}`);
  const argText = [
    ...args.map((a) => `${a.name}: ${opts.literal?.[a.name] ?? `$${a.name}`}`),
    ...(opts.extraArgs ? [opts.extraArgs] : []),
  ].join(', ');
  let sel = selectionFor(site.field.type);
  if (opts.extraSelection) sel = sel ? sel.replace(/ }$/, ` ${opts.extraSelection} }`) : `{ ${opts.extraSelection} }`;
  let body = `${site.field.name}${argText ? `(${argText})` : ''} ${sel}`;
  for (const f of [...site.via].reverse()) body = `${f} { ${body} }`;
  return `${site.operation}${defs.length ? `(${defs.join(', ')})` : ''} { ${body} }`;
}
