import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newUid } from './uid.js';

test('uids are version-7 UUIDs, unique, and ordered by the millisecond they were made in', async () => {
  const first = Array.from({ length: 2000 }, () => newUid());
  await new Promise((r) => setTimeout(r, 5));
  const later = newUid();
  for (const u of first)
    assert.match(u, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(new Set([...first, later]).size, first.length + 1);
  for (const u of first) assert.ok(u < later, `${u} sorts before ${later}`);
  const ms = Number.parseInt(later.replaceAll('-', '').slice(0, 12), 16);
  assert.ok(Math.abs(ms - Date.now()) < 1000, 'the leading bits are the time of creation');
});
