import { Role } from '../src/common/auth/role.enum';
import { AdjustCreditsDocument, BalanceChangedDocument, MeDocument, SetLowCreditThresholdDocument } from './graphql/generated';
import { subscribe, untilLive } from './helpers/subscriptions';
import { useTestApp } from './helpers/test-app';

const t = useTestApp();
const admin = { sub: 'ops', role: Role.ADMIN };

describe('balanceChanged', () => {
  it('pushes every committed change to its owner, and none to another user', async () => {
    await t.app.gql(MeDocument, {}, { sub: 'owner' });
    await t.app.gql(MeDocument, {}, { sub: 'other' });
    const mine = subscribe(t.app.ws({ sub: 'owner' }), BalanceChangedDocument);
    const theirs = subscribe(t.app.ws({ sub: 'other' }), BalanceChangedDocument);
    await untilLive(mine, () => t.app.gql(SetLowCreditThresholdDocument, { threshold: 5 }, { sub: 'owner' }));
    await untilLive(theirs, () => t.app.gql(SetLowCreditThresholdDocument, { threshold: 5 }, { sub: 'other' }));

    for (const amount of [10, -7, -20]) {
      const r = await t.app.gql(AdjustCreditsDocument, { input: { accountId: 'owner', amount, reason: 'x' } }, admin);
      expect(r.data!.adjustCredits.userErrors).toEqual([]);
    }
    const events = await mine.waitFor(3);
    expect(events.map((e) => e.balanceChanged.available)).toEqual([35, 28, 8]);
    expect(events[2].balanceChanged).toEqual({ available: 8, lowCreditThreshold: 5, isLow: false });
    await new Promise((r) => setTimeout(r, 200));
    expect(mine.events).toHaveLength(3);
    expect(theirs.events).toHaveLength(0);
    await mine.dispose();
    await theirs.dispose();
  });

  it('publishes nothing for a refused change', async () => {
    await t.app.gql(MeDocument, {}, { sub: 'refused' });
    const sub = subscribe(t.app.ws({ sub: 'refused' }), BalanceChangedDocument);
    await untilLive(sub, () => t.app.gql(SetLowCreditThresholdDocument, { threshold: 5 }, { sub: 'refused' }));
    const r = await t.app.gql(AdjustCreditsDocument, { input: { accountId: 'refused', amount: -500, reason: 'x' } }, admin);
    expect(r.data!.adjustCredits.userErrors[0].code).toBe('INSUFFICIENT_CREDITS');
    await t.app.gql(AdjustCreditsDocument, { input: { accountId: 'refused', amount: -1, reason: 'x' } }, admin);
    const events = await sub.waitFor(1);
    expect(events[0].balanceChanged.available).toBe(24);
    await new Promise((r) => setTimeout(r, 200));
    expect(sub.events).toHaveLength(1);
    await sub.dispose();
  });
});
