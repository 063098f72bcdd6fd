/** Writes schema/schema.graphql from the code (npm run schema). The test suite fails when it is stale. */
import 'reflect-metadata';
import { promises as fs } from 'node:fs';
import { buildAppSchema, printAppSchema, SCHEMA_FILE } from '../src/schema';

buildAppSchema()
  .then(async (schema) => {
    await fs.writeFile(SCHEMA_FILE, printAppSchema(schema));
    process.stdout.write(`wrote ${SCHEMA_FILE}\n`);
  })
  .catch((e) => {
    process.stderr.write(String(e?.stack ?? e) + '\n');
    process.exit(1);
  });
