/**
 * Entities are honest: each one maps every column of its table, and nothing more, so code that
 * reads an entity never misses a column the SQL writes.
 */
import { entities } from '../ormconfig';
import { createDataSource } from '../ormconfig';
import { createTestDatabase } from './helpers/test-app';

describe('TypeORM entities', () => {
  it('map exactly the columns of their tables', async () => {
    const ds = createDataSource(await createTestDatabase(), 1);
    await ds.initialize();
    try {
      for (const entity of entities) {
        const meta = ds.getMetadata(entity);
        const table = (await ds.query(
          `SELECT column_name AS name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 ORDER BY 1`,
          [meta.tableName],
        )) as { name: string }[];
        expect({ entity: meta.name, columns: meta.columns.map((c) => c.databaseName).sort() }).toEqual({ entity: meta.name, columns: table.map((c) => c.name) });
      }
    } finally {
      await ds.destroy();
    }
  });
});
