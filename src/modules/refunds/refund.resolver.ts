import { holderOf } from '../workspaces/holder';
import { Arg, Args, Authorized, Ctx, FieldResolver, Mutation, Query, Resolver, Root } from 'type-graphql';
import { Role } from '../../common/auth/role.enum';
import { UserError } from '../../common/errors/user-error.type';
import { ConnectionArgs } from '../../common/relay/connection.args';
import type { ConnectionShape } from '../../common/relay/connection.type';
import { paginate } from '../../common/relay/paginate';
import { callerId, type Context } from '../../context';
import { Account } from '../accounts/account.type';
import { Purchase } from '../billing/purchase.type';
import { RefundRequest, RefundRequestConnection, RequestRefundInput, RequestRefundPayload, ReviewRefundInput, type RefundRequestRow } from './refund-request.type';

@Resolver(_of => Purchase)
export class PurchaseRefundResolver {
  @FieldResolver(_returns => Boolean, { description: 'requestRefund would refund it now (in full, or a share an admin reviews): the policy applied to this moment' })
  refundable(@Root() p: Purchase, @Ctx() ctx: Context): Promise<boolean> {
    return ctx.services.refunds.refundable(p.row);
  }

  @FieldResolver(_returns => RefundRequest, { nullable: true, description: 'The latest refund request for it, whatever its status' })
  async refundRequest(@Root() p: Purchase, @Ctx() ctx: Context): Promise<RefundRequest | null> {
    const r = await ctx.services.refunds.latestRequest(p.id);
    return r ? RefundRequest.fromRow(r) : null;
  }
}

@Resolver(_of => RefundRequest)
export class RefundRequestResolver {
  @FieldResolver(_returns => Purchase)
  async purchase(@Root() r: RefundRequest, @Ctx() ctx: Context): Promise<Purchase> {
    const row = await ctx.services.refunds.purchaseOf(r.accountId, r.purchaseId);
    if (!row) throw new Error(`purchase ${r.purchaseId} vanished`);
    return Purchase.fromRow(row);
  }

  @Authorized()
  @Mutation(_returns => RequestRefundPayload, { description: 'Asks for a refund of your purchase; decided at once under the policy (or sent to review).' })
  async requestRefund(@Arg('input', _type => RequestRefundInput) input: RequestRefundInput, @Ctx() ctx: Context): Promise<RequestRefundPayload> {
    const holder = await holderOf(ctx, input.workspaceId, 'manager', ['input', 'workspaceId']);
    if ('error' in holder) return { refundRequest: null, userErrors: [UserError.of(holder.error.code, holder.error.message, holder.error.field)] };
    const out = await ctx.services.refunds.request(holder.accountId, input.purchaseId, input.reason);
    return {
      refundRequest: out.request ? RefundRequest.fromRow(out.request) : null,
      userErrors: out.error ? [UserError.of(out.error.code, out.error.message, out.error.field)] : [],
    };
  }

  @Authorized(Role.ADMIN)
  @Mutation(_returns => RequestRefundPayload, { description: 'Admin: approves (refunds the proposed amount, withdraws the unspent credits, ends the plan) or denies a request under review.' })
  async reviewRefundRequest(@Arg('input', _type => ReviewRefundInput) input: ReviewRefundInput, @Ctx() ctx: Context): Promise<RequestRefundPayload> {
    const out = await ctx.services.refunds.review(callerId(ctx), input.id, input.approve, input.note);
    return {
      refundRequest: out.request ? RefundRequest.fromRow(out.request) : null,
      userErrors: out.error ? [UserError.of(out.error.code, out.error.message, out.error.field)] : [],
    };
  }

  @Authorized(Role.ADMIN)
  @Query(_returns => RefundRequestConnection, { description: 'Admin: refund requests waiting for a decision, newest first.' })
  refundRequestsToReview(@Args(_type => ConnectionArgs) page: ConnectionArgs, @Ctx() ctx: Context): Promise<ConnectionShape<RefundRequest>> {
    return paginate<RefundRequestRow, RefundRequest>(ctx.services.db, {
      table: 'refund_requests',
      where: `status = 'PENDING_REVIEW'`,
      params: [],
      page,
      map: RefundRequest.fromRow,
    });
  }
}

@Resolver(_of => Account)
export class AccountRefundsResolver {
  @FieldResolver(_returns => RefundRequestConnection, { description: 'Refund requests, newest first, with their decisions.' })
  refundRequests(@Root() account: Account, @Args(_type => ConnectionArgs) page: ConnectionArgs, @Ctx() ctx: Context): Promise<ConnectionShape<RefundRequest>> {
    return paginate<RefundRequestRow, RefundRequest>(ctx.services.db, {
      table: 'refund_requests',
      where: 'account_id = $1',
      params: [account.id],
      page,
      map: RefundRequest.fromRow,
    });
  }
}
