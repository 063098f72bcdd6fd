/**
 * The class-validator rules on input classes, run by type-graphql (`validateFn`), refused in the
 * one error shape of the API: BAD_USER_INPUT with `extensions.field` the path to the first
 * field at fault as an array of strings, and a message that names each field and its rule —
 * never the value sent, never the whole input (class-validator's own error carries both).
 */
import { validate, type ValidationError } from 'class-validator';
import { getNamedType, type GraphQLResolveInfo } from 'graphql';
import type { ValidatorFn } from 'type-graphql';
import { badUserInput } from './graphql-errors';

interface Failure {
  field: string[];
  message: string;
}

/** The failures below `error`, each with its full path and a message that starts with it. */
function failuresOf(error: ValidationError, parent: string[]): Failure[] {
  const field = [...parent, error.property];
  const own = Object.values(error.constraints ?? {}).map((m) => ({
    field,
    message: `${field.join('.')}${m.startsWith(error.property) ? m.slice(error.property.length) : `: ${m}`}`.replace(/\b1 (\w+)s\b/g, '1 $1'),
  }));
  return [...own, ...(error.children ?? []).flatMap((c) => failuresOf(c, Array.isArray(error.value) ? [...field] : field))];
}

/** The argument `value` was given as: its name when the field has an argument of its input type, none for @ArgsType classes. */
function argumentPath(info: GraphQLResolveInfo, className: string | undefined): string[] {
  const args = info.parentType.getFields()[info.fieldName]?.args ?? [];
  const arg = args.find((a) => getNamedType(a.type).name === className);
  return arg ? [arg.name] : [];
}

export const validateInput: ValidatorFn = async (value, type, { info }) => {
  if (value === null || typeof value !== 'object') return;
  const items: object[] = Array.isArray(value) ? value.filter((v) => v !== null && typeof v === 'object') : [value];
  const root = argumentPath(info, (type as { name?: string }).name);
  const failures: Failure[] = [];
  for (const [i, item] of items.entries()) {
    const errors = await validate(item, { skipMissingProperties: true, forbidUnknownValues: false, validationError: { target: false, value: false } });
    const at = Array.isArray(value) ? [...root, String(i)] : root;
    failures.push(...errors.flatMap((e) => failuresOf(e, at)));
  }
  if (failures.length) throw badUserInput(failures.map((f) => f.message).join('; '), failures[0].field);
};
