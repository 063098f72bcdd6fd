/** "1 credit", "2 credits": every sentence that counts credits says it this way. */
export const credits = (n: number): string => `${n} ${n === 1 ? 'credit' : 'credits'}`;
