/** Notifications as kept, with their sentence rendered the way the API renders it. */
import { render } from '../../src/modules/notifications/notices';
import type { TestApp } from './test-app';

export async function notesOf(app: TestApp, sub: string, kinds: string[]): Promise<{ kind: string; message: string }[]> {
  const { rows } = await app.audit.query<{ kind: string; template: string; params: unknown }>(
    'SELECT kind, template, params FROM notifications WHERE account_id = $1 AND kind = ANY($2) ORDER BY created_at, id', [sub, kinds]);
  return rows.map((r) => ({ kind: r.kind, message: render(r.template, r.params) }));
}
