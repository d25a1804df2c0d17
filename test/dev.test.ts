// `continuum dev` as a person runs it: one command brings up a federation with three
// providers in three countries and a demo VM; Ctrl-C leaves nothing behind.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { startCli } from './support/cli.js';
import { http } from './support/control-plane.js';
import { pidsMatching } from './support/processes.js';

test('continuum dev runs a federation with a demo VM, and Ctrl-C removes every VM, process and namespace', async () => {
  const dev = await startCli(['dev', '--listen', '127.0.0.1:0', '--agent-port', '0'], /Press Ctrl-C to stop/);
  const out = dev.output();
  const api = /API:\s+(\S+)/.exec(out)![1]!;
  const token = /admin token:\s+(\S+)/.exec(out)![1]!;
  const demo = /demo VM:\s+(\S+)/.exec(out)![1]!;
  const dataDir = /data:\s+(\S+)/.exec(out)![1]!;
  const asRoot = process.getuid?.() === 0;
  try {
    const admin = http(api, token);
    const providers = (await admin.get('/v1/providers')).body.items;
    assert.equal(providers.length, 3);
    const countries = new Set((await admin.get('/v1/sites')).body.items.map((s: any) => s.spec.country));
    assert.equal(countries.size, 3, 'three countries');
    const nodes = (await admin.get('/v1/nodes')).body.items;
    assert.equal(nodes.length, 4);
    assert.ok(nodes.every((n: any) => n.status.state === 'ready'));
    const page = await (await fetch(demo)).text();
    assert.match(page, /^hello from hello-0 \(/);
    if (asRoot) {
      assert.match(out, /agent iberia-edge\/mad-1-node-1 in namespace ctmdev-3/);
      assert.match(demo, /^http:\/\/10\.237\.0\.13:/, 'the VM is reached at its node namespace address');
    }
    assert.ok(pidsMatching(dataDir).length >= 5, 'agents and the VM run');
  } finally {
    dev.child.kill('SIGINT');
    await once(dev.child, 'exit');
  }
  assert.equal(dev.child.exitCode, 0);
  assert.match(dev.output(), /nothing left behind/);
  assert.deepEqual(pidsMatching(dataDir), [], 'no agent or QEMU process left');
  assert.ok(!existsSync(dataDir), 'temporary data removed');
  if (asRoot) {
    assert.doesNotMatch(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }), /ctmdev-/);
    assert.doesNotMatch(execFileSync('ip', ['link', 'show'], { encoding: 'utf8' }), /ctmdev/);
  }
});
