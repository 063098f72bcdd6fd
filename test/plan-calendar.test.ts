import { addMonths, nextAllowanceMonth } from '../src/modules/billing/plans/plan-calendar';
import { derivedId } from '../src/common/ids';

describe('the plan calendar', () => {
  it('clamps to the end of shorter months', () => {
    expect(addMonths(new Date('2026-01-31T10:00:00Z'), 1).toISOString()).toBe('2026-02-28T10:00:00.000Z');
    expect(addMonths(new Date('2028-01-31T10:00:00Z'), 1).toISOString()).toBe('2028-02-29T10:00:00.000Z');
    expect(addMonths(new Date('2026-12-31T10:00:00Z'), 12).toISOString()).toBe('2027-12-31T10:00:00.000Z');
  });

  it('splits an annual period that starts on the 31st into exactly twelve allowance months', () => {
    const start = new Date('2026-12-31T10:00:00Z');
    const end = addMonths(start, 12);
    const months = [{ start, end: addMonths(start, 1) }];
    while (months[months.length - 1].end < end) months.push(nextAllowanceMonth(start, end, months[months.length - 1].end));
    expect(months).toHaveLength(12);
    expect(months.map((m) => m.end.toISOString().slice(0, 10))).toEqual([
      '2027-01-31', '2027-02-28', '2027-03-31', '2027-04-30', '2027-05-31', '2027-06-30',
      '2027-07-31', '2027-08-31', '2027-09-30', '2027-10-31', '2027-11-30', '2027-12-31',
    ]);
  });

  it('derives the same purchase id from the same parts, and another from others', () => {
    const a = derivedId('renewal', 'acct', '2027-01-01');
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(derivedId('renewal', 'acct', '2027-01-01')).toBe(a);
    expect(derivedId('renewal', 'acct', '2027-02-01')).not.toBe(a);
  });
});
