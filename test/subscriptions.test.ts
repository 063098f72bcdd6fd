import { BalanceChangedDocument, SetLowCreditThresholdDocument } from './graphql/generated';
import { adjustCredits, openAccount, signupCredits } from './helpers/accounts';
import { subscribe, untilLive } from './helpers/subscriptions';
import { useTestApp } from './helpers/test-app';

const t = useTestApp();

describe('balanceChanged', () => {
  it('pushes every committed change to its owner, and none to another user', async () => {
    await openAccount(t.app, 'owner');
    await openAccount(t.app, 'other');
    const mine = subscribe(t.app.ws({ sub: 'owner' }), BalanceChangedDocument);
    const theirs = subscribe(t.app.ws({ sub: 'other' }), BalanceChangedDocument);
    await untilLive(mine, () => t.app.gql(SetLowCreditThresholdDocument, { threshold: 5 }, { sub: 'owner' }));
    await untilLive(theirs, () => t.app.gql(SetLowCreditThresholdDocument, { threshold: 5 }, { sub: 'other' }));

    const signup = await signupCredits(t.app);
    for (const amount of [10, -7, -20]) {
      const r = await adjustCredits(t.app, 'owner', amount, { reason: 'x' });
      expect(r.data!.adjustCredits.userErrors).toEqual([]);
    }
    const events = await mine.waitFor(3);
    expect(events.map((e) => e.balanceChanged.available)).toEqual([signup + 10, signup + 3, signup - 17]);
    expect(events[2].balanceChanged).toEqual({ available: signup - 17, lowCreditThreshold: 5, isLow: false });
    await new Promise((r) => setTimeout(r, 200));
    expect(mine.events).toHaveLength(3);
    expect(theirs.events).toHaveLength(0);
    await mine.dispose();
    await theirs.dispose();
  });

  it('publishes nothing for a refused change', async () => {
    await openAccount(t.app, 'refused');
    const sub = subscribe(t.app.ws({ sub: 'refused' }), BalanceChangedDocument);
    await untilLive(sub, () => t.app.gql(SetLowCreditThresholdDocument, { threshold: 5 }, { sub: 'refused' }));
    const signup = await signupCredits(t.app);
    const r = await adjustCredits(t.app, 'refused', -500, { reason: 'x' });
    expect(r.data!.adjustCredits.userErrors).toEqual([
      { code: 'INSUFFICIENT_CREDITS', message: `Cannot take 500 credits: the balance is ${signup}`, field: ['input', 'amount'] },
    ]);
    await adjustCredits(t.app, 'refused', -1, { reason: 'x' });
    const events = await sub.waitFor(1);
    expect(events[0].balanceChanged.available).toBe(signup - 1);
    await new Promise((r) => setTimeout(r, 200));
    expect(sub.events).toHaveLength(1);
    await sub.dispose();
  });
});
