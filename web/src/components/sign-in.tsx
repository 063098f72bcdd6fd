import { useEffect, useState } from 'preact/hooks';
import { demoTokens, identityOf, type DemoToken } from '../auth';

export function SignIn({ onToken }: { onToken: (token: string) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string>();
  const [demos, setDemos] = useState<DemoToken[]>([]);
  useEffect(() => void demoTokens().then(setDemos), []);
  const submit = (e: Event) => {
    e.preventDefault();
    if (!identityOf(token.trim())) return setError('That does not look like an access token (a JWT with a subject).');
    onToken(token.trim());
  };
  return (
    <main class="narrow">
      <h1>Credits</h1>
      <form onSubmit={submit} class="card">
        <h2>Sign in</h2>
        <label for="token">Access token</label>
        <textarea id="token" rows={4} value={token} onInput={(e) => setToken((e.target as HTMLTextAreaElement).value)} aria-describedby="token-help" />
        <p id="token-help" class="muted">Paste the bearer token your identity provider issued, or open a link ending in #token=….</p>
        {error && <p role="alert" class="error">{error}</p>}
        <button type="submit" data-testid="sign-in">Sign in</button>
      </form>
      {demos.length > 0 && (
        <section class="card" aria-labelledby="demo-heading">
          <h2 id="demo-heading">Demo accounts</h2>
          <p class="muted">This service runs outside production: try it as one of these.</p>
          <ul class="plain">
            {demos.map((d) => (
              <li key={d.sub}>
                <button type="button" class="secondary" data-testid={`demo-${d.role}`} onClick={() => onToken(d.token)}>
                  {d.sub} ({d.role})
                </button>
              </li>
            ))}
          </ul>
        </section>
      )}
    </main>
  );
}
