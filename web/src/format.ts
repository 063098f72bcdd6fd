/** How the dashboard writes numbers, money and dates. */
export const credits = (n: number): string => `${n.toLocaleString('en')} ${n === 1 ? 'credit' : 'credits'}`;
export const money = (cents: number, currency: string): string =>
  new Intl.NumberFormat('en', { style: 'currency', currency: currency.trim() || 'USD' }).format(cents / 100);
export const when = (iso: string | null | undefined): string => (iso ? new Date(iso).toLocaleString('en', { dateStyle: 'medium', timeStyle: 'short' }) : '—');
export const day = (iso: string | null | undefined): string => (iso ? new Date(iso).toLocaleDateString('en', { dateStyle: 'medium' }) : 'never');
export const titleCase = (code: string): string => code.charAt(0) + code.slice(1).toLowerCase().replace(/_/g, ' ');
