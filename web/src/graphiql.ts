// The local GraphiQL at /graphiql (outside production): from npm, no CDN. The token the
// dashboard keeps for this tab (or ?token=) goes into the Authorization header, HTTP and ws.
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import 'graphiql/style.css';
import { createElement } from 'react';
import { createRoot } from 'react-dom/client';
import { TOKEN_KEY } from './auth';

const token = new URLSearchParams(location.search).get('token') ?? sessionStorage.getItem(TOKEN_KEY);
const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
const fetcher = createGraphiQLFetcher({
  url: `${location.origin}/graphql`,
  subscriptionUrl: `${location.origin.replace(/^http/, 'ws')}/graphql`,
  headers,
  wsConnectionParams: token ? { authorization: `Bearer ${token}` } : undefined,
});
createRoot(document.getElementById('graphiql')!).render(
  createElement(GraphiQL, { fetcher, defaultQuery: '{ me { id balance { available lots { source remaining expiresAt } } } }\n' }),
);
