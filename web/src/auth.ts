/**
 * Sign-in: a token from the URL fragment `#token=<jwt>` (then cleared from the address bar and
 * kept for this tab only, in sessionStorage), or pasted into the sign-in field; outside
 * production the service offers its demo tokens (GET /auth/demo-tokens).
 */
export const TOKEN_KEY = 'credits.token';

export interface Identity {
  token: string;
  sub: string;
  role: 'user' | 'admin' | 'worker' | string;
  expiresAt?: Date;
}

/** The claims of a JWT, unverified (the service verifies; this only labels the screen). */
export function identityOf(token: string): Identity | undefined {
  const part = token.split('.')[1];
  if (!part) return undefined;
  try {
    const claims = JSON.parse(atob(part.replace(/-/g, '+').replace(/_/g, '/'))) as { sub?: string; role?: string; exp?: number };
    if (!claims.sub) return undefined;
    return { token, sub: claims.sub, role: claims.role ?? 'user', expiresAt: claims.exp ? new Date(claims.exp * 1000) : undefined };
  } catch {
    return undefined;
  }
}

/** The token of this tab: from the fragment first (which is then removed), else the one kept. */
export function takeToken(): Identity | undefined {
  const fromFragment = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromFragment) {
    history.replaceState(null, '', location.pathname + location.search);
    const id = identityOf(fromFragment);
    if (id) sessionStorage.setItem(TOKEN_KEY, fromFragment);
    return id;
  }
  const kept = sessionStorage.getItem(TOKEN_KEY);
  return kept ? identityOf(kept) : undefined;
}

export function keepToken(token: string): Identity | undefined {
  const id = identityOf(token.trim());
  if (id) sessionStorage.setItem(TOKEN_KEY, id.token);
  return id;
}

export function signOut(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

export interface DemoToken {
  sub: string;
  role: string;
  token: string;
}

/** The service's demo tokens, outside production (an empty list otherwise). */
export async function demoTokens(): Promise<DemoToken[]> {
  try {
    const res = await fetch('/auth/demo-tokens');
    if (!res.ok) return [];
    return ((await res.json()) as { tokens: DemoToken[] }).tokens;
  } catch {
    return [];
  }
}
