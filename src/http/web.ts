/**
 * The dashboard (web/, built by `npm run build:web` into dist/web) at `/`, on the same origin as
 * /graphql; outside production a local GraphiQL at /graphiql (from npm, built with the
 * dashboard: no CDN). A browser that opens /graphql is sent to /graphiql outside production.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import express from 'express';

/** dist/web from the source tree (ts-node) or from dist/src (the build); undefined when not built. */
export function webDir(): string | undefined {
  for (const up of ['../..', '../../..']) {
    const dir = path.resolve(__dirname, up, 'dist', 'web');
    if (existsSync(path.join(dir, 'index.html'))) return dir;
  }
  return undefined;
}

export function mountWeb(app: express.Express, opts: { production: boolean }): void {
  const dir = webDir();
  if (!opts.production) {
    app.get('/graphql', (req, res, next) => {
      // A person with a browser, not a client: the local GraphiQL.
      if (req.accepts(['application/json', 'text/html']) === 'text/html' && !req.query.query) return res.redirect(302, '/graphiql');
      next();
    });
  }
  if (!dir) {
    app.get('/', (_req, res) => {
      res.status(404).type('text/plain').send('The dashboard is not built: run `npm run build:web` (npm start does it).\n');
    });
    return;
  }
  if (!opts.production) {
    app.get('/graphiql', (_req, res) => res.sendFile(path.join(dir, 'graphiql.html')));
  } else {
    app.get(['/graphiql', '/graphiql.html'], (_req, res) => res.status(404).type('text/plain').send('GraphiQL is off in production.\n'));
  }
  app.use(
    express.static(dir, {
      index: 'index.html',
      // Hashed asset names never change; the page itself is always revalidated.
      setHeaders: (res, file) => res.setHeader('cache-control', file.includes(`${path.sep}assets${path.sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache'),
    }),
  );
}
