// An unhandled rejection in a control plane is logged and counted; the process lives on.
// Run in a child process: the guard is process-wide, and the control case shows what
// Node.js does without it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

const GUARD = new URL('./guard.js', import.meta.url).href;

const run = (guarded: boolean) =>
  spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `
      import { Registry } from 'prom-client';
      import { guardControlPlane } from ${JSON.stringify(GUARD)};
      const registry = new Registry();
      const seen = [];
      if (${guarded}) guardControlPlane(registry, (err) => seen.push(err.message));
      Promise.reject(new Error('nobody handles this'));
      setTimeout(async () => {
        const metric = (await registry.getSingleMetricAsString('continuum_unhandled_rejections_total')).split('\\n').pop();
        console.log(JSON.stringify({ seen, metric }));
      }, 100);
      `,
    ],
    { encoding: 'utf8', cwd: new URL('../../../', import.meta.url).pathname },
  );

test('an unhandled rejection is logged and counted, and the process keeps running', () => {
  const r = run(true);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), {
    seen: ['nobody handles this'],
    metric: 'continuum_unhandled_rejections_total 1',
  });
});

test('without the guard, Node.js ends the process (what the guard prevents)', () => {
  const r = run(false);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /nobody handles this/);
  assert.equal(r.stdout, '');
});
