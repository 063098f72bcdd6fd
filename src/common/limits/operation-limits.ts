/**
 * Depth, alias and cost limits, the same for HTTP and websocket operations.
 * Cost: every field costs 1; a connection multiplies the cost of what it selects per edge
 * (edges and below) by its page size (`first`, default 20), and adds once what it selects once
 * per connection: pageInfo (1 a field) and each totalCount response name (TOTAL_COUNT_COST, a
 * count over all its rows; aliases are counts of their own, a name selected twice is one).
 * Any other field with `first` multiplies all it selects. Outer pages multiply everything below
 * them, so aliases and nested pages add up; fragments cost what their fields cost inline.
 * Every refusal is a GraphQLError with a code (GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED,
 * BAD_USER_INPUT, OPERATION_TOO_COSTLY): hostile documents never surface as internal errors.
 */
import {
  GraphQLError,
  GraphQLIncludeDirective,
  GraphQLSkipDirective,
  Kind,
  getDirectiveValues,
  getNamedType,
  getOperationAST,
  getVariableValues,
  parse,
  visit,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLSchema,
  type SelectionNode,
  type SelectionSetNode,
} from 'graphql';
import { getComplexity, type ComplexityEstimator } from 'graphql-query-complexity';
import { DEFAULT_PAGE_SIZE } from '../relay/connection.args';

/** Tokens in one document: far above any real operation, far below what exhausts the parser's stack. */
export const MAX_DOCUMENT_TOKENS = 10_000;
/** Aliased fields in one operation, counted with fragments expanded (alias attacks multiply root resolvers). */
export const MAX_ALIASES = 50;
/**
 * Times one response name may be selected in one selection set, fragments expanded. graphql-js
 * compares every pair of same-named fields when it validates (OverlappingFieldsCanBeMerged), so
 * `{ me { balance { available } balance { available } … } }` repeated 500 times held the event
 * loop ~60 ms before validation gave up; repeats add no data. 20 leaves room for many fragments
 * that each select `id` and `__typename` at one level.
 */
export const MAX_FIELD_REPEATS = 20;

export interface Limits {
  maxDepth: number;
  maxCost: number;
  /** Root fields of one mutation operation (aliases and fragments included). */
  maxMutations: number;
  introspection: boolean;
}

/**
 * What one totalCount costs: a `SELECT count(*)` over all the holder's rows (src/common/relay/paginate.ts),
 * a scan, run once per connection and response name whatever the page size.
 */
export const TOTAL_COUNT_COST = 100;

/** Fields of a connection selected once per connection, not per edge. */
const ONCE_PER_CONNECTION = new Set(['pageInfo', 'totalCount', '__typename']);

const isConnection = (type: { name: string }) => type.name.endsWith('Connection');

/**
 * What the estimator reads beside the field (graphql-query-complexity hands it `context`): the
 * document's fragments and the operation's coerced variables (for @skip/@include), so a
 * connection can price its once-per-connection selections itself.
 */
interface CostContext {
  fragments: Map<string, FragmentDefinitionNode>;
  variables: () => Record<string, unknown> | undefined;
}

/** Whether @skip/@include keep `sel`, as getComplexity decides it. */
function included(sel: SelectionNode, variables: () => Record<string, unknown> | undefined): boolean {
  if (!sel.directives?.length) return true;
  try {
    return getDirectiveValues(GraphQLSkipDirective, sel, variables())?.if !== true && getDirectiveValues(GraphQLIncludeDirective, sel, variables())?.if !== false;
  } catch {
    return true; // counted; getComplexity refuses values that do not fit the operation it costs
  }
}

/** Each field `set` selects, named and inline fragments expanded, skipped ones left out; cycles count as nothing. */
function eachField(set: SelectionSetNode, ctx: CostContext, visitField: (sel: FieldNode) => void, visiting = new Set<string>()): void {
  for (const sel of set.selections) {
    if (!included(sel, ctx.variables)) continue;
    if (sel.kind === Kind.FIELD) visitField(sel);
    else if (sel.kind === Kind.INLINE_FRAGMENT) eachField(sel.selectionSet, ctx, visitField, visiting);
    else {
      const f = ctx.fragments.get(sel.name.value);
      if (!f || visiting.has(f.name.value)) continue;
      visiting.add(f.name.value);
      eachField(f.selectionSet, ctx, visitField, visiting);
      visiting.delete(f.name.value);
    }
  }
}

/** Fields in `set` and below, 1 each (pageInfo's, which selects scalars). */
function fieldsIn(set: SelectionSetNode, ctx: CostContext): number {
  let n = 0;
  eachField(set, ctx, (sel) => (n += 1 + (sel.selectionSet ? fieldsIn(sel.selectionSet, ctx) : 0)));
  return n;
}

/**
 * What a connection's selection costs once, whatever its page size: TOTAL_COUNT_COST for each
 * totalCount response name (graphql-js merges a name selected twice, fragments included, into one
 * field: one count; each alias is a count of its own), pageInfo and __typename 1 a field. Walks
 * only what getComplexity walked at this connection, so it costs no more than its own pass.
 */
function oncePerConnection(set: SelectionSetNode | undefined, ctx: CostContext): number {
  if (!set) return 0;
  const counts = new Set<string>();
  let cost = 0;
  eachField(set, ctx, (sel) => {
    if (sel.name.value === 'totalCount') counts.add((sel.alias ?? sel.name).value);
    else if (ONCE_PER_CONNECTION.has(sel.name.value)) cost += 1 + (sel.selectionSet ? fieldsIn(sel.selectionSet, ctx) : 0);
  });
  return cost + counts.size * TOTAL_COUNT_COST;
}

const estimator: ComplexityEstimator = ({ args, childComplexity, field, node, type, context }) => {
  // Priced by the connection that holds it (oncePerConnection), so a connection's
  // childComplexity is what it selects per edge. (A connection reached through a union or
  // interface would lose them; the schema has none.)
  if (isConnection(type) && ONCE_PER_CONNECTION.has(field.name)) return 0;
  if (isConnection(getNamedType(field.type))) {
    const first = typeof args.first === 'number' ? args.first : DEFAULT_PAGE_SIZE;
    return 1 + oncePerConnection(node.selectionSet, context as CostContext) + childComplexity * Math.max(1, first);
  }
  const first = typeof args.first === 'number' ? args.first : 1;
  return 1 + childComplexity * Math.max(1, first);
};

function fragmentsOf(document: DocumentNode): Map<string, FragmentDefinitionNode> {
  const map = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) map.set(d.name.value, d);
  return map;
}

/**
 * Folds every selection set of `document` into a value, named fragments expanded: each
 * fragment's value is computed once, so fragments that spread others several times
 * (F0 { ...F1 ...F1 } F1 { ...F2 ...F2 } …) cost linear time, not 2^n. Unknown fragments and
 * fragment cycles count as `empty` here (KnownFragmentNames and NoFragmentCycles refuse them),
 * so a hostile document cannot crash a check (graphql-depth-limit threw on both). `combine`
 * may change its first argument (a fresh `empty()`), never its second (it may be memoised).
 */
function foldSelections<T>(
  document: DocumentNode,
  empty: () => T,
  combine: (acc: T, part: T) => T,
  field: (sel: FieldNode, recurse: (set: SelectionSetNode) => T) => T,
  stop: (acc: T) => boolean = () => false,
): (set: SelectionSetNode) => T {
  const fragments = fragmentsOf(document);
  const memo = new Map<string, T>();
  const visiting = new Set<string>();
  const fold = (set: SelectionSetNode): T => {
    let acc = empty();
    for (const sel of set.selections) {
      if (stop(acc)) break;
      if (sel.kind === Kind.FIELD) acc = combine(acc, field(sel, fold));
      else if (sel.kind === Kind.INLINE_FRAGMENT) acc = combine(acc, fold(sel.selectionSet));
      else {
        const name = sel.name.value;
        const f = fragments.get(name);
        if (!f || visiting.has(name)) continue;
        if (!memo.has(name)) {
          visiting.add(name);
          memo.set(name, fold(f.selectionSet));
          visiting.delete(name);
        }
        acc = combine(acc, memo.get(name)!);
      }
    }
    return acc;
  };
  return fold;
}

/** Operations of `document` whose value under `fold` passes `limit`, as errors. */
function operationErrors(document: DocumentNode, fold: (set: SelectionSetNode) => number, limit: number, message: (name: string) => string): GraphQLError[] {
  const errors: GraphQLError[] = [];
  for (const d of document.definitions) {
    if (d.kind === Kind.OPERATION_DEFINITION && fold(d.selectionSet) > limit) {
      errors.push(new GraphQLError(message(d.name?.value ?? ''), { nodes: [d] }));
    }
  }
  return errors;
}

/** Deepest field below a root field (selection sets below it), fragments expanded. */
export function depthErrors(document: DocumentNode, maxDepth: number): GraphQLError[] {
  const below = foldSelections<number>(document, () => 0, Math.max, (sel, recurse) =>
    sel.name.value.startsWith('__') || !sel.selectionSet ? 0 : 1 + recurse(sel.selectionSet),
  );
  return operationErrors(document, below, maxDepth, (name) => `'${name}' exceeds maximum operation depth of ${maxDepth}`);
}

/** More than `max` aliased fields in an operation, fragments expanded. */
export function aliasErrors(document: DocumentNode, max: number): GraphQLError[] {
  const count = foldSelections<number>(
    document,
    () => 0,
    (a, b) => a + b,
    (sel, recurse) => (sel.alias ? 1 : 0) + (sel.selectionSet ? recurse(sel.selectionSet) : 0),
    (n) => n > max,
  );
  return operationErrors(document, count, max, (name) => `'${name}' uses more than ${max} aliases`);
}

/**
 * More than `max` root fields in a mutation operation, aliases and fragments included: each is
 * a write (50 aliased purchaseCreditPack in one request were 50 checkouts).
 */
export function mutationErrors(document: DocumentNode, max: number): GraphQLError[] {
  const roots = foldSelections<number>(document, () => 0, (a, b) => a + b, () => 1, (n) => n > max);
  const errors: GraphQLError[] = [];
  for (const d of document.definitions) {
    if (d.kind === Kind.OPERATION_DEFINITION && d.operation === 'mutation' && roots(d.selectionSet) > max) {
      errors.push(new GraphQLError(`'${d.name?.value ?? ''}' has more than ${max} mutations; one request carries at most ${max} (aliases included)`, { nodes: [d] }));
    }
  }
  return errors;
}

/**
 * A response name selected more than `max` times in one selection set, fragments (named and
 * inline) expanded at that level. Each selection set's counts are computed once and capped, so nested
 * spreads cannot make the check itself expensive; cycles and unknown fragments count as nothing.
 */
export function repeatedFieldErrors(document: DocumentNode, max: number): GraphQLError[] {
  const fragments = fragmentsOf(document);
  // The response names of one selection set with how often each is selected (capped at max + 1):
  // a field counts itself and does not descend; fragments at this level add their counts.
  const counts = foldSelections<Map<string, number>>(
    document,
    () => new Map(),
    (into, part) => {
      for (const [k, n] of part) into.set(k, Math.min(max + 1, (into.get(k) ?? 0) + n));
      return into;
    },
    (sel) => new Map([[(sel.alias ?? sel.name).value, 1]]),
  );
  const errors: GraphQLError[] = [];
  for (const d of document.definitions) {
    if (d.kind !== Kind.OPERATION_DEFINITION) continue;
    // Every selection set of the operation, and of the fragments it reaches.
    const sets: SelectionSetNode[] = [d.selectionSet];
    const reached = new Set<string>();
    let found: string | undefined;
    while (sets.length && !found) {
      const set = sets.pop()!;
      for (const [name, n] of counts(set)) if (n > max) found = name;
      for (const sel of set.selections) {
        if (sel.kind === Kind.FIELD || sel.kind === Kind.INLINE_FRAGMENT) {
          if (sel.selectionSet) sets.push(sel.selectionSet);
        } else if (!reached.has(sel.name.value) && fragments.has(sel.name.value)) {
          reached.add(sel.name.value);
          sets.push(fragments.get(sel.name.value)!.selectionSet);
        }
      }
    }
    if (found) errors.push(new GraphQLError(`'${d.name?.value ?? ''}' selects "${found}" more than ${max} times in one selection set`, { nodes: [d] }));
  }
  return errors;
}

/**
 * The depth, alias, repeated-field and mutation-count limits alone: cheap (no schema walk), so they run before
 * the full validation, whose overlapping-fields rule is quadratic in the fields of a selection
 * and would otherwise give an alias or repeated-field flood the CPU it is refused for.
 * Undefined when the document passes.
 */
export function precheckDocument(document: DocumentNode, limits: Limits): readonly GraphQLError[] | undefined {
  const errors = [
    ...depthErrors(document, limits.maxDepth),
    ...aliasErrors(document, MAX_ALIASES),
    ...repeatedFieldErrors(document, MAX_FIELD_REPEATS),
    ...mutationErrors(document, limits.maxMutations),
  ];
  return errors.length ? errors : undefined;
}

/** Costs of documents whose page sizes and @skip/@include conditions are literals, so their cost does not depend on variables. */
const fixedCosts = new WeakMap<DocumentNode, Map<string, number>>();

function costFromVariables(document: DocumentNode): boolean {
  let found = false;
  visit(document, {
    Argument(node) {
      if (node.name.value === 'first' && node.value.kind === Kind.VARIABLE) found = true;
    },
    // A field skipped for one request's variables costs nothing then, and all of it for the next.
    Directive(node) {
      if ((node.name.value === 'skip' || node.name.value === 'include') && node.arguments?.some((a) => a.value.kind === Kind.VARIABLE)) found = true;
    },
  });
  return found;
}

export function operationCost(schema: GraphQLSchema, document: DocumentNode, variables: Record<string, unknown> | undefined, operationName?: string | null): number {
  const compute = () => {
    let coerced: Record<string, unknown> | undefined | null = null;
    const context: CostContext = {
      fragments: fragmentsOf(document),
      // Only a directive at a connection's own level needs them (coerced as getComplexity does; its errors are its to report).
      variables: () => {
        if (coerced === null) {
          const operation = getOperationAST(document, operationName ?? undefined);
          coerced = operation ? getVariableValues(schema, operation.variableDefinitions ?? [], variables ?? {}).coerced : undefined;
        }
        return coerced;
      },
    };
    return getComplexity({ schema, query: document, variables: variables ?? {}, operationName: operationName ?? undefined, estimators: [estimator], context });
  };
  // Apollo hands out the same parsed document for the same query text, so most requests hit this cache.
  let byOperation = fixedCosts.get(document);
  if (!byOperation) {
    if (costFromVariables(document)) return compute();
    byOperation = new Map();
    fixedCosts.set(document, byOperation);
  }
  const key = operationName ?? '';
  let cost = byOperation.get(key);
  if (cost === undefined) {
    cost = compute();
    byOperation.set(key, cost);
  }
  return cost;
}

export function costError(cost: number, max: number): GraphQLError {
  return new GraphQLError(`The operation costs ${cost}, above the limit of ${max}; ask for fewer fields or smaller pages`, {
    extensions: { code: 'OPERATION_TOO_COSTLY', cost, maxCost: max, http: { status: 400 } },
  });
}

/**
 * The cost refusal, if any. Runs before variables are coerced (Apollo computes it in
 * didResolveOperation), so bad variable values surface here: they are BAD_USER_INPUT, and a
 * document too large to cost is OPERATION_TOO_COSTLY — never an uncoded (internal) error.
 */
export function checkCost(
  schema: GraphQLSchema,
  document: DocumentNode,
  variables: Record<string, unknown> | undefined,
  operationName: string | null | undefined,
  maxCost: number,
): GraphQLError | undefined {
  let cost: number;
  try {
    cost = operationCost(schema, document, variables, operationName);
  } catch (e) {
    const message = e instanceof GraphQLError ? e.message : 'The variables do not fit the operation';
    if (/maximum allowed number of nodes/.test(message)) {
      return new GraphQLError('The operation has too many fields to run; ask for fewer', { extensions: { code: 'OPERATION_TOO_COSTLY', maxCost, http: { status: 400 } } });
    }
    return new GraphQLError(message, { nodes: e instanceof GraphQLError ? e.nodes : undefined, extensions: { code: 'BAD_USER_INPUT', http: { status: 400 } } });
  }
  return cost > maxCost ? costError(cost, maxCost) : undefined;
}

/** Parses with the token limit; a document the parser cannot handle is a coded parse error. */
export function parseOperation(query: unknown): DocumentNode | GraphQLError {
  if (typeof query !== 'string') return new GraphQLError('The query must be a string', { extensions: { code: 'BAD_REQUEST' } });
  try {
    return parse(query, { maxTokens: MAX_DOCUMENT_TOKENS });
  } catch (e) {
    if (e instanceof GraphQLError) return new GraphQLError(e.message, { nodes: e.nodes, source: e.source, positions: e.positions, extensions: { code: 'GRAPHQL_PARSE_FAILED' } });
    return new GraphQLError('Syntax Error: the document is nested too deeply', { extensions: { code: 'GRAPHQL_PARSE_FAILED' } });
  }
}
