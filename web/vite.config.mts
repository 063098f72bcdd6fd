import { fileURLToPath } from 'node:url';
import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

// The dashboard (index.html, Preact) and the local GraphiQL (graphiql.html, React: GraphiQL
// needs it), built into dist/web and served by the service at / and /graphiql.
export default defineConfig({
  root: here('.'),
  base: '/',
  plugins: [preact({ reactAliasesEnabled: false })],
  build: {
    outDir: here('../dist/web'),
    emptyOutDir: true,
    reportCompressedSize: false,
    chunkSizeWarningLimit: 1500, // GraphiQL's own bundle; the dashboard's first screen is measured by the browser tests
    rolldownOptions: {
      input: { index: here('index.html'), graphiql: here('graphiql.html') },
      onwarn(warning, warn) {
        if (warning.code === 'MODULE_LEVEL_DIRECTIVE') return; // React's compiler runtime in GraphiQL
        warn(warning);
      },
    },
  },
  server: { proxy: { '/graphql': { target: 'http://localhost:4000', ws: true }, '/auth': 'http://localhost:4000' } },
});
