/**
 * The one gate every GraphQL operation passes, on HTTP and on websockets alike, so the two
 * transports cannot diverge:
 * 1. `document(query)`: parse under the token limit, then the document limits (depth, aliases,
 *    repeated fields) — cheap, no schema walk, so a flood is refused before graphql-js validates
 *    it (its overlapping-fields rule is quadratic). Once per query text (a bounded cache of this
 *    gate's own, one per server).
 * 2. Validation against the schema: Apollo does it for HTTP (its rules plus no introspection in
 *    production); `check` does it for websockets with the same rules.
 * 3. `cost(...)`: the operation's cost for its variables (Apollo calls it once the operation is
 *    resolved; `check` for websockets).
 * Every refusal is a GraphQLError with its code.
 */
import { GraphQLError, getOperationAST, NoSchemaIntrospectionCustomRule, specifiedRules, validate, type DocumentNode, type GraphQLSchema, type ValidationRule } from 'graphql';
import { checkCost, parseOperation, precheckDocument, type Limits } from './operation-limits';

const CACHE_MAX = 2000;

export class OperationGate {
  /** Query texts that passed step 1, with their document. */
  private readonly passed = new Map<string, DocumentNode>();

  constructor(private readonly schema: GraphQLSchema, readonly limits: Limits) {}

  /** The extra validation rules beside graphql-js's own (no introspection in production). */
  get validationRules(): ValidationRule[] {
    return this.limits.introspection ? [] : [NoSchemaIntrospectionCustomRule];
  }

  /** Step 1: the parsed document, or why it is refused (GRAPHQL_PARSE_FAILED / GRAPHQL_VALIDATION_FAILED). */
  document(query: unknown): DocumentNode | readonly GraphQLError[] {
    if (typeof query === 'string') {
      const known = this.passed.get(query);
      if (known) return known;
    }
    const document = parseOperation(query);
    if (document instanceof GraphQLError) return [document];
    const errors = precheckDocument(document, this.limits);
    if (errors) return errors.map((e) => coded(e, 'GRAPHQL_VALIDATION_FAILED', this.limits.introspection));
    if (typeof query === 'string') {
      if (this.passed.size >= CACHE_MAX) this.passed.clear();
      this.passed.set(query, document);
    }
    return document;
  }

  /** Step 3: the cost refusal for these variables, if any. */
  cost(document: DocumentNode, variables: Record<string, unknown> | undefined, operationName: string | null | undefined): GraphQLError | undefined {
    return checkCost(this.schema, document, variables, operationName, this.limits.maxCost);
  }

  /** All three steps, for a transport without Apollo (websockets). */
  check(query: unknown, variables: Record<string, unknown> | undefined, operationName: string | null | undefined): { document: DocumentNode } | { errors: readonly GraphQLError[] } {
    const document = this.document(query);
    if (!('kind' in document)) return { errors: document };
    const invalid = validate(this.schema, document, [...specifiedRules, ...this.validationRules]);
    if (invalid.length) return { errors: invalid.map((e) => coded(e, 'GRAPHQL_VALIDATION_FAILED', this.limits.introspection)) };
    if (!getOperationAST(document, operationName ?? undefined)) {
      const message = operationName ? `Unknown operation named "${operationName}"` : 'Must provide operation name if query contains multiple operations';
      return { errors: [new GraphQLError(message, { extensions: { code: 'OPERATION_RESOLUTION_FAILURE' } })] };
    }
    const refusal = this.cost(document, variables, operationName);
    return refusal ? { errors: [refusal] } : { document };
  }
}

/** The error with its code; without introspection, no schema hints in its message either. */
function coded(e: GraphQLError, code: string, introspection: boolean): GraphQLError {
  const message = introspection ? e.message : e.message.replace(/ Did you mean .*\?$/, '');
  return new GraphQLError(message, { nodes: e.nodes, source: e.source, positions: e.positions, extensions: { code } });
}
