import { Arg, Authorized, Ctx, Mutation, Resolver } from 'type-graphql';
import { Role } from '../../common/auth/role.enum';
import { UserError } from '../../common/errors/user-error.type';
import { callerId, type Context } from '../../context';
import { AdjustCreditsInput } from './adjust-credits.input';
import { AdjustCreditsPayload } from './adjust-credits.payload';
import { Balance } from './balance.type';
import { LedgerEntry } from './ledger-entry.type';

@Resolver()
export class AdjustmentResolver {
  @Authorized(Role.ADMIN)
  @Mutation(_returns => AdjustCreditsPayload, { description: 'Admin: add (ADJUSTMENT lot) or take credits; idempotent.' })
  async adjustCredits(@Arg('input', _type => AdjustCreditsInput) input: AdjustCreditsInput, @Ctx() ctx: Context): Promise<AdjustCreditsPayload> {
    const out = await ctx.services.adjustments.adjust(callerId(ctx), input);
    const entry = out.entryId ? await ctx.services.ledger.entry(out.entryId) : null;
    return {
      entry: entry ? LedgerEntry.fromRow(entry) : null,
      balance: out.balance ? Balance.of(out.balance) : null,
      userErrors: out.error ? [UserError.of(out.error.code, out.error.message, out.error.field)] : [],
    };
  }
}
