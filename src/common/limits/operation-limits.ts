/**
 * Depth and cost limits, the same for HTTP and websocket operations.
 * Cost: every field costs 1; a connection (or any field with `first`) multiplies the cost of
 * what it selects by its page size (default 20), so aliases and nested pages add up.
 */
import depthLimit from 'graphql-depth-limit';
import {
  GraphQLError,
  Kind,
  getNamedType,
  visit,
  NoSchemaIntrospectionCustomRule,
  specifiedRules,
  validate,
  type DocumentNode,
  type GraphQLSchema,
  type ValidationRule,
} from 'graphql';
import { getComplexity, type ComplexityEstimator } from 'graphql-query-complexity';
import { DEFAULT_PAGE_SIZE } from '../relay/connection.args';

export interface Limits {
  maxDepth: number;
  maxCost: number;
  introspection: boolean;
}

const estimator: ComplexityEstimator = ({ args, childComplexity, field }) => {
  const isConnection = getNamedType(field.type).name.endsWith('Connection');
  const first = typeof args.first === 'number' ? args.first : isConnection ? DEFAULT_PAGE_SIZE : 1;
  return 1 + childComplexity * Math.max(1, first);
};

export function limitRules(limits: Limits): ValidationRule[] {
  const rules: ValidationRule[] = [depthLimit(limits.maxDepth)];
  if (!limits.introspection) rules.push(NoSchemaIntrospectionCustomRule);
  return rules;
}

/** Costs of documents whose page sizes are literals, so their cost does not depend on variables. */
const fixedCosts = new WeakMap<DocumentNode, Map<string, number>>();

function pageSizeFromVariables(document: DocumentNode): boolean {
  let found = false;
  visit(document, {
    Argument(node) {
      if (node.name.value === 'first' && node.value.kind === Kind.VARIABLE) found = true;
    },
  });
  return found;
}

export function operationCost(schema: GraphQLSchema, document: DocumentNode, variables: Record<string, unknown> | undefined, operationName?: string | null): number {
  const compute = () => getComplexity({ schema, query: document, variables: variables ?? {}, operationName: operationName ?? undefined, estimators: [estimator] });
  // Apollo hands out the same parsed document for the same query text, so most requests hit this cache.
  let byOperation = fixedCosts.get(document);
  if (!byOperation) {
    if (pageSizeFromVariables(document)) return compute();
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

/** Full validation for operations that do not pass through Apollo (websockets). */
export function validateOperation(
  schema: GraphQLSchema,
  document: DocumentNode,
  variables: Record<string, unknown> | undefined,
  operationName: string | null | undefined,
  limits: Limits,
): readonly GraphQLError[] {
  const errors = validate(schema, document, [...specifiedRules, ...limitRules(limits)]);
  if (errors.length) return errors;
  let cost: number;
  try {
    cost = operationCost(schema, document, variables, operationName);
  } catch (e) {
    return [e instanceof GraphQLError ? e : new GraphQLError(String(e), { extensions: { code: 'BAD_USER_INPUT' } })];
  }
  return cost > limits.maxCost ? [costError(cost, limits.maxCost)] : [];
}
