import type { CreditWarningSubscription, MeQuery, PackFieldsFragment } from '../../../client/generated/graphql';
import { credits, day, titleCase } from '../format';
import { BuyPack } from './buy';

type Balance = MeQuery['me']['balance'];

export function LowCreditBanner({ balance, warning, packs }: { balance: Balance; warning?: CreditWarningSubscription['creditWarning']; packs: PackFieldsFragment[] }) {
  if (!balance.isLow) return null;
  return (
    <section class="banner" role="alert" data-testid="low-credit-banner">
      <p>
        {balance.available === 0 ? 'You are out of credits.' : `Only ${credits(balance.available)} left, below your warning level of ${balance.lowCreditThreshold}.`}{' '}
        {warning?.message && <span class="muted">{warning.message}</span>}
      </p>
      <div class="row">
        {(warning?.topUpOptions ?? packs).map((p) => (
          <BuyPack key={p.code} pack={p} />
        ))}
      </div>
    </section>
  );
}

export function BalancePanel({ balance, plan }: { balance: Balance; plan: MeQuery['me']['plan'] }) {
  return (
    <section class="card" aria-labelledby="balance-heading">
      <h2 id="balance-heading">Your credits</h2>
      <p class="big">{credits(balance.available)}</p>
      <p class="muted">
        {plan.tier.name} plan{plan.currentPeriodEnd ? `, renews ${day(plan.currentPeriodEnd)}` : ''}
        {plan.cancelAtPeriodEnd ? ' (ends then)' : ''}
        {plan.scheduledTier ? ` · moving to ${plan.scheduledTier.name} then` : ''}
      </p>
      {balance.nextExpiry && (
        <p data-testid="next-expiry">
          {credits(balance.nextExpiry.credits)} expire {day(balance.nextExpiry.expiresAt)}
        </p>
      )}
      {balance.runway && (
        <p class="muted" data-testid="runway">
          Enough for {balance.runway.standardImages.toLocaleString('en')} standard {balance.runway.standardImages === 1 ? 'image' : 'images'}
          {balance.runway.daysLeft !== null
            ? ` · about ${Math.floor(balance.runway.daysLeft).toLocaleString('en')} days at your 30-day pace (${balance.runway.dailySpend.toFixed(1)} a day)`
            : ''}
        </p>
      )}
      <table>
        <caption>Credit lots, spent soonest-expiring first</caption>
        <thead>
          <tr>
            <th scope="col">From</th>
            <th scope="col">Left</th>
            <th scope="col">Expires</th>
          </tr>
        </thead>
        <tbody>
          {balance.lots.map((l) => (
            <tr key={l.id} data-testid="lot">
              <td>{titleCase(l.source)}</td>
              <td>
                {l.remaining} of {l.granted}
              </td>
              <td>{day(l.expiresAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
