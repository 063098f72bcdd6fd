/** "credit" or "credits" for `n`; `credits(n)` is "1 credit", "2 credits": every sentence that counts credits says it this way. */
export const creditWord = (n: number): string => (n === 1 ? 'credit' : 'credits');
export const credits = (n: number): string => `${n} ${creditWord(n)}`;
