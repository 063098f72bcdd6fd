import { registerEnumType } from 'type-graphql';

export enum PlanStatus {
  ACTIVE = 'ACTIVE',
  CANCELED = 'CANCELED',
  PAST_DUE = 'PAST_DUE',
}
registerEnumType(PlanStatus, { name: 'PlanStatus' });
