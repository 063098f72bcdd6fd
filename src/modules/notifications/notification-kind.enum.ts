import { registerEnumType } from 'type-graphql';

export enum NotificationKind {
  LOW_CREDITS = 'LOW_CREDITS',
  CREDITS_DEPLETED = 'CREDITS_DEPLETED',
  JOB_FINISHED = 'JOB_FINISHED',
  PURCHASE_COMPLETED = 'PURCHASE_COMPLETED',
  REFUND_DECIDED = 'REFUND_DECIDED',
  PLAN_RENEWED = 'PLAN_RENEWED',
  PLAN_ENDED = 'PLAN_ENDED',
  PAYMENT_REVERSED = 'PAYMENT_REVERSED',
}
registerEnumType(NotificationKind, { name: 'NotificationKind' });
