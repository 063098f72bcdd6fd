import { Arg, Args, Authorized, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import { UserError } from '../../common/errors/user-error.type';
import { ConnectionArgs } from '../../common/relay/connection.args';
import type { ConnectionShape } from '../../common/relay/connection.type';
import { purchasesPage } from '../accounts/holder-pages';
import { callerId, type Context } from '../../context';
import { Account } from '../accounts/account.type';
import { Balance } from '../ledger/balance.type';
import { PurchaseCreditPackInput, PurchasePayload } from './purchase-credit-pack.input';
import { Purchase, PurchaseConnection } from './purchase.type';
import { planOf } from '../accounts/account.resolver';
import { BillingInterval, TierCode } from '../catalog/catalog.enums';
import { ChangePlanInput, ChangePlanPayload, PlanChangePreview } from './change-plan.input';
import type { PlanOutcome } from './plans/plan-lifecycle';
import { holderOf, holderOrThrow } from '../workspaces/holder';

/** A plan change refused before anything was read (a workspace the caller is not a member of). */
function refused(e: { code: UserError['code']; message: string; field: string[] }): ChangePlanPayload {
  return { plan: null, purchase: null, checkoutUrl: null, balance: null, userErrors: [UserError.of(e.code, e.message, e.field)] };
}

@Resolver(_of => Account)
export class AccountPurchasesResolver {
  @FieldResolver(_returns => PurchaseConnection, { description: 'Packs and plans bought, newest first.' })
  purchases(@Root() account: Account, @Args(_type => ConnectionArgs) page: ConnectionArgs, @Ctx() ctx: Context): Promise<ConnectionShape<Purchase>> {
    return purchasesPage(ctx.services.db, account.id, page);
  }
}

@Resolver()
export class BillingResolver {
  @Authorized()
  @Mutation(_returns => PurchasePayload, { description: 'Buys a credit pack on any plan: a lot that never expires. Idempotent with a key.' })
  async purchaseCreditPack(@Arg('input', _type => PurchaseCreditPackInput) input: PurchaseCreditPackInput, @Ctx() ctx: Context): Promise<PurchasePayload> {
    await ctx.services.accounts.ensureOpen(callerId(ctx));
    const holder = await holderOf(ctx, input.workspaceId, 'manager', ['input', 'workspaceId']);
    if ('error' in holder) return { purchase: null, checkoutUrl: null, balance: null, userErrors: [UserError.of(holder.error.code, holder.error.message, holder.error.field)] };
    const out = await ctx.services.billing.purchasePack(holder.accountId, input);
    return {
      purchase: out.purchase ? Purchase.fromRow(out.purchase) : null,
      checkoutUrl: out.checkoutUrl ?? null,
      balance: out.balance ? Balance.of(out.balance) : null,
      userErrors: out.error ? [UserError.of(out.error.code, out.error.message, out.error.field)] : [],
    };
  }
}

@Resolver()
export class PlanResolver {
  @Authorized()
  @Mutation(_returns => ChangePlanPayload, { description: 'Moves to another plan: upgrades now (prorated), the rest at the period end.' })
  async changePlan(@Arg('input', _type => ChangePlanInput) input: ChangePlanInput, @Ctx() ctx: Context): Promise<ChangePlanPayload> {
    await ctx.services.accounts.ensureOpen(callerId(ctx));
    const holder = await holderOf(ctx, input.workspaceId, 'manager', ['input', 'workspaceId']);
    if ('error' in holder) return refused(holder.error);
    return this.payload(ctx, holder.accountId, await ctx.services.plans.changePlan(holder.accountId, input));
  }

  @Authorized()
  @Query(_returns => PlanChangePreview, { description: 'What changePlan(tier, interval) would charge and give now (the same rules; nothing changes).' })
  async planChangePreview(
    @Arg('tier', _type => TierCode) tier: TierCode,
    @Arg('interval', _type => BillingInterval) interval: BillingInterval,
    @Arg('workspaceId', _type => ID, { nullable: true, description: "A workspace's plan (its OWNER or an ADMIN)" }) workspaceId: string | null,
    @Ctx() ctx: Context,
  ): Promise<PlanChangePreview> {
    await ctx.services.accounts.ensureOpen(callerId(ctx));
    const holder = await holderOrThrow(ctx, workspaceId, 'manager', ['workspaceId']);
    const p = await ctx.services.plans.preview(holder.accountId, tier, interval);
    return {
      tier, interval, amountCents: p.amountCents, currency: p.currency, creditsGranted: p.creditsGranted, effectiveAt: p.effectiveAt,
      userErrors: p.error ? [UserError.of(p.error.code, p.error.message, p.error.field)] : [],
    };
  }

  @Authorized()
  @Mutation(_returns => ChangePlanPayload, { description: 'Ends the paid plan at the period end (cancelAtPeriodEnd); the credits stay until then.' })
  async cancelPlan(
    @Arg('workspaceId', _type => ID, { nullable: true, description: "A workspace's plan (its OWNER or an ADMIN)" }) workspaceId: string | null,
    @Ctx() ctx: Context,
  ): Promise<ChangePlanPayload> {
    await ctx.services.accounts.ensureOpen(callerId(ctx));
    const holder = await holderOf(ctx, workspaceId, 'manager', ['workspaceId']);
    if ('error' in holder) return refused(holder.error);
    return this.payload(ctx, holder.accountId, await ctx.services.plans.cancelPlan(holder.accountId));
  }

  private async payload(ctx: Context, id: string, out: PlanOutcome): Promise<ChangePlanPayload> {
    const row = await ctx.services.accounts.get(id);
    const purchase = out.purchaseId ? await ctx.services.billing.get(id, out.purchaseId) : undefined;
    const balance = await ctx.services.ledger.balance(id);
    return {
      plan: row ? await planOf(row, ctx) : null,
      purchase: purchase ? Purchase.fromRow(purchase) : null,
      checkoutUrl: out.checkoutUrl ?? null,
      balance: balance ? Balance.of(balance) : null,
      userErrors: out.error ? [UserError.of(out.error.code, out.error.message, out.error.field)] : [],
    };
  }
}
