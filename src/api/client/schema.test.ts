// The checked-in client types are what the API's OpenAPI document generates now: a route
// whose schema changed without `npm run gen:client` fails here (and so in CI).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { clientTypes, SCHEMA_FILE } from './generate.js';

test('the typed client matches the API (run `npm run gen:client` after changing a route)', async () => {
  const current = readFileSync(SCHEMA_FILE, 'utf8');
  const generated = await clientTypes();
  if (current !== generated) {
    const a = current.split('\n');
    const b = generated.split('\n');
    const at = a.findIndex((line, i) => line !== b[i]);
    assert.fail(
      `src/api/client/schema.ts is stale from line ${at + 1} ("${a[at]?.trim()}" should be "${b[at]?.trim()}"): run npm run gen:client`,
    );
  }
});
