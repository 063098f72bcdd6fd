/**
 * Baseline (b): the ceiling of our stack. express 5 + Apollo Server 5 + the same bearer check
 * (jose HS256), one mutation that performs the bare debit — update a balance row and insert a
 * ledger row — as one statement, on the same database and pool size.
 */
import { ApolloServer } from '@apollo/server';
import { expressMiddleware } from '@as-integrations/express5';
import express from 'express';
import http from 'node:http';
import { GraphQLError } from 'graphql';
import { Pool } from 'pg';
import { bearerToken, createTokenVerifier } from '../src/common/auth/jwt';

async function main(): Promise<void> {
  const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.DB_POOL_SIZE ?? 20) });
  const verify = createTokenVerifier({ secret: process.env.JWT_SECRET });
  const apollo = new ApolloServer<{ sub: string }>({
    typeDefs: `type Query { ok: Boolean } type Mutation { debit(amount: Int!): Int }`,
    resolvers: {
      Mutation: {
        debit: async (_: unknown, { amount }: { amount: number }, ctx: { sub: string }) => {
          const r = await pool.query(
            `WITH a AS (UPDATE accounts SET available = available - $2 WHERE id = $1 AND available >= $2 RETURNING available)
             INSERT INTO ledger_entries (account_id, kind, amount, balance_after, description, created_at)
             SELECT $1, 'DEBIT', -$2::int, a.available, 'bench', now() FROM a RETURNING balance_after`,
            [ctx.sub, amount],
          );
          return r.rows[0]?.balance_after ?? null;
        },
      },
    },
  });
  await apollo.start();
  const app = express();
  app.get('/readyz', (_req, res) => {
    res.send('ok');
  });
  app.use(
    '/graphql',
    express.json(),
    expressMiddleware(apollo, {
      context: async ({ req }) => {
        const token = bearerToken(req.headers.authorization);
        if (!token) throw new GraphQLError('no token', { extensions: { code: 'UNAUTHENTICATED' } });
        return { sub: (await verify(token)).sub };
      },
    }),
  );
  const server = http.createServer(app);
  server.listen(Number(process.env.PORT), '127.0.0.1');
  process.on('SIGTERM', () => server.close(() => pool.end().then(() => process.exit(0))));
}

void main();
