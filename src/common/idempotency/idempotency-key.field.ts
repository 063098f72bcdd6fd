import { IsOptional, Length, Matches } from 'class-validator';
import { Field } from 'type-graphql';

/** The optional `idempotencyKey` of every keyed mutation's input: 1–255 characters, no NUL, scoped to the caller. */
export function IdempotencyKeyField(): PropertyDecorator {
  const decorators: PropertyDecorator[] = [
    Field(_type => String, { nullable: true, description: 'Up to 255 characters, scoped to the caller' }),
    IsOptional(),
    Length(1, 255),
    Matches(/^[^\u0000]*$/, { message: 'idempotencyKey must not contain NUL characters' }),
  ];
  return (target, property) => {
    for (const d of [...decorators].reverse()) d(target, property); // bottom-up, as stacked decorators run
  };
}
