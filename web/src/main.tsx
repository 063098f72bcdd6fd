import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { Provider } from '@urql/preact';
import { App } from './app';
import { keepToken, signOut, takeToken, type Identity } from './auth';
import { connect } from './client';
import { SignIn } from './components/sign-in';
import './styles.css';

function Root() {
  const [identity, setIdentity] = useState<Identity | undefined>(() => takeToken());
  const connection = useMemo(() => (identity ? connect(identity.token, () => setIdentity(undefined)) : undefined), [identity?.token]);
  useEffect(() => () => void connection?.ws.dispose(), [connection]);
  if (!identity || !connection) return <SignIn onToken={(t) => setIdentity(keepToken(t))} />;
  return (
    <Provider value={connection.client}>
      <App
        identity={identity}
        connection={connection}
        onSignOut={() => {
          signOut();
          setIdentity(undefined);
        }}
      />
    </Provider>
  );
}

render(<Root />, document.getElementById('app')!);
