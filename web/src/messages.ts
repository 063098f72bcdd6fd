/** Messages people understand, by error code (the service's own message is the fallback). */
import type { CombinedError } from '@urql/core';
import type { AutoTopUpFieldsFragment } from '../../client/generated/graphql';
import { credits } from './format';

const USER_ERRORS: Record<string, string> = {
  INSUFFICIENT_CREDITS: 'You do not have enough credits for this.',
  FEATURE_NOT_IN_TIER: 'Your plan does not include this. Upgrade to use it.',
  QUOTE_EXPIRED: 'The price changed while you were deciding; here is the new one.',
  QUOTE_MISMATCH: 'The settings changed after the price was shown; check the new price.',
  PAYMENT_FAILED: 'The payment did not go through. Nothing was charged; try again or use another card.',
  REFUND_WINDOW_EXPIRED: 'Refunds are possible within 24 hours of a purchase; this one is older.',
  CREDITS_ALREADY_USED: 'Credits were used since this purchase, so it can no longer be refunded.',
  REFUND_ALREADY_REQUESTED: 'A refund was already requested for this purchase.',
  IDEMPOTENCY_KEY_REUSED: 'This request was already sent with other details.',
  NOT_FOUND: 'Nothing was found with that id.',
  INVALID_STATE: 'That is not possible right now.',
  INVALID_INPUT: 'Please check what you entered.',
  MEMBER_LIMIT_REACHED: 'This would take you past your monthly limit in this workspace. Ask its owner or an admin to raise it.',
};

const TOP_LEVEL: Record<string, string> = {
  UNAUTHENTICATED: 'Your sign-in expired or is not valid. Please sign in again.',
  FORBIDDEN: 'Your account is not allowed to do this.',
  RATE_LIMITED: 'Too many requests. Please wait a moment and try again.',
  SERVICE_UNAVAILABLE: 'The service is briefly unavailable. Please try again in a moment.',
  BAD_USER_INPUT: 'Please check what you entered.',
};

export interface UserErrorLike {
  code: string;
  message: string;
}

/** A user error in words: the friendly sentence, then the service's specific one. */
export function explain(e: UserErrorLike): string {
  const friendly = USER_ERRORS[e.code];
  return friendly ? `${friendly} (${e.message})` : e.message;
}

export function explainRequest(error: CombinedError | undefined): string | undefined {
  if (!error) return undefined;
  if (error.networkError) return 'The service cannot be reached. Check your connection; we will keep trying.';
  const first = error.graphQLErrors[0];
  const code = first?.extensions?.code as string | undefined;
  if (code === 'BAD_USER_INPUT') return first!.message;
  return (code && TOP_LEVEL[code]) ?? first?.message ?? 'Something went wrong.';
}

/**
 * A refusal of a workspace operation: FORBIDDEN is about the caller's role in the workspace there
 * (a MEMBER asking what only its OWNER or an ADMIN may), with the service's reason after it.
 */
export function explainWorkspaceRequest(error: CombinedError | undefined): string | undefined {
  const first = error?.graphQLErrors[0];
  if (first?.extensions?.code === 'FORBIDDEN') return `Your role in this workspace does not allow this. (${first.message})`;
  return explainRequest(error);
}

/** The dashboard's own sentences (not error codes). */
export const MESSAGES = {
  autoTopUpHint: 'When it is on, a generation you cannot afford buys the pack first and then starts. Three failed purchases in a row turn it off.',
  autoTopUpSaved: 'Saved: auto top-up is on.',
  autoTopUpTurnedOff: 'Auto top-up is off; your settings are kept.',
  autoTopUpWholeLevel: 'Enter the level as a whole number of credits.',
  autoTopUpWholeCap: 'Enter the monthly limit as a whole number.',
  workspacesHint: 'A workspace is a shared credit pool: its members generate from it, each within their own monthly limit.',
  workspacesNone: 'You are not in any workspace yet.',
  workspaceMembersOnlyManagers: 'Only the owner or an admin of this workspace adds members or changes them.',
  workspaceGone: 'This workspace is no longer yours to see.',
  workspaceWholeLimit: 'Enter the monthly limit as a whole number of credits (0 or more), or leave it empty for no limit.',
  workspaceNameNeeded: 'Enter a name for the workspace.',
};

/** A role as people read it. */
export const roleName = (role: string): string => role.charAt(0) + role.slice(1).toLowerCase();

/** What a member may spend a month. */
export const limitText = (limit: number | null | undefined): string => (limit == null ? 'No limit' : `${credits(limit)} a month`);

/** What the add-member form did (setWorkspaceMember adds or changes a member). */
export function memberSaved(accountId: string, role: string, limit: number | null): string {
  const a = role === 'ADMIN' ? 'an admin' : role === 'OWNER' ? 'the owner' : 'a member';
  return `Saved: ${accountId} is ${a}, ${limit == null ? 'with no monthly limit' : `with a limit of ${credits(limit)} a month`}.`;
}

/** What auto top-up does now, in one sentence (the AutoTopUp of `me`; null until first set). */
export function autoTopUpState(a: AutoTopUpFieldsFragment | null | undefined, packName: (code: string) => string): string {
  if (!a) return 'Off: nothing is bought by itself.';
  if (!a.enabled) return a.failedAttempts >= 3 ? `Off: turned off after ${a.failedAttempts} failed purchases in a row.` : 'Off: nothing is bought by itself.';
  return `On: buys ${packName(a.packCode)} when below ${credits(a.belowCredits)}, at most ${a.maxPerMonth} a month; ${a.purchasesThisMonth} this month.`;
}

/** Consecutive failures while it is on (undefined when there are none). */
export function autoTopUpFailures(a: AutoTopUpFieldsFragment): string | undefined {
  if (!a.enabled || a.failedAttempts === 0) return undefined;
  const n = a.failedAttempts;
  return `${n} failed ${n === 1 ? 'purchase' : 'purchases'} in a row; the third turns auto top-up off. Check your payment method.`;
}
