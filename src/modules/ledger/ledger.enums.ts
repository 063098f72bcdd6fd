import { registerEnumType } from 'type-graphql';

export enum LotSource {
  SIGNUP_BONUS = 'SIGNUP_BONUS',
  MONTHLY_ALLOWANCE = 'MONTHLY_ALLOWANCE',
  PACK_PURCHASE = 'PACK_PURCHASE',
  ADJUSTMENT = 'ADJUSTMENT',
}
export enum LedgerEntryKind {
  GRANT = 'GRANT',
  DEBIT = 'DEBIT',
  REFUND = 'REFUND',
  REVOCATION = 'REVOCATION',
  EXPIRY = 'EXPIRY',
  ADJUSTMENT = 'ADJUSTMENT',
}

registerEnumType(LotSource, { name: 'LotSource' });
registerEnumType(LedgerEntryKind, { name: 'LedgerEntryKind' });
