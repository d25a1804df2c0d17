// Draining a site and a provider through the CLI, on a real control plane whose nodes
// are written in the agents' own format (no agents: placement and moves are the control
// plane's; the live side is test/migration.test.ts). Every node of the site or provider
// is drained, its replicas move within the workload's rules, `--wait` says how many
// moved — or which cannot go anywhere and why — and uncordon undoes it.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { runCli } from './support/cli.js';
import { startTestControlPlane, type TestControlPlane } from './support/control-plane.js';
import { image, project, provider, site, workload } from './support/fixtures.js';
import { insertReadyNodes } from './support/nodes.js';
import { waitFor } from './support/test-image.js';

/** An image file's content: the control plane checks it, no VM boots it here. */
const DISK = Buffer.from('a disk image');

describe('draining sites and providers', () => {
  let t: TestControlPlane;
  let env: Record<string, string>;
  const NODES = [
    ['de-cloud', 'fra', 'fra-1'],
    ['de-cloud', 'fra', 'fra-2'],
    ['de-cloud', 'ber', 'ber-1'],
    ['fr-cloud', 'par', 'par-1'],
  ] as const;
  const where = async () =>
    ((await t.admin.get('/v1/instances?project=shop')).body.items as any[])
      .filter((i) => i.spec.desired !== 'absent')
      .map((i) => i.spec.node)
      .sort();

  before(async () => {
    t = await startTestControlPlane('sqlite');
    env = { CONTINUUM_SERVER: t.url, CONTINUUM_TOKEN: t.adminToken };
    const r = await t.admin.post('/v1/apply', {
      documents: [
        provider('de-cloud'),
        site('de-cloud', 'fra'),
        site('de-cloud', 'ber', { location: { latitude: 52.52, longitude: 13.4 } }),
        provider('fr-cloud', { headquarters: 'FR' }),
        site('fr-cloud', 'par', { country: 'FR', location: { latitude: 48.85, longitude: 2.35 } }),
        project('shop'),
        image('shop', 'img', createHash('sha256').update(DISK).digest('hex')),
      ],
    });
    assert.equal(r.status, 200, r.text);
    const up = await t.admin.put('/v1/projects/shop/images/img/files/disk', DISK);
    assert.equal(up.status, 200, up.text);
    // Nodes as their agents register them.
    await insertReadyNodes(t.cp.store, NODES, { cpus: 4, memoryMiB: 8192 });
  });
  after(async () => t.close());

  test('draining a site moves its replicas to the provider’s other site; uncordon opens it again', async () => {
    const applied = await t.admin.post('/v1/apply', {
      documents: [
        workload('shop', 'web', {
          image: 'img',
          replicas: 2,
          placement: { countries: ['DE'], node: undefined, spread: { across: 'site', mode: 'soft' } },
        }),
      ],
    });
    assert.equal(applied.status, 200, applied.text);
    await waitFor('placed', async () => (await where()).length === 2);
    const drained = await runCli(['drain', 'site', 'de-cloud/fra', '--wait'], env);
    assert.equal(drained.code, 0, drained.stderr);
    assert.match(drained.stdout, /^site de-cloud\/fra: 2 node\(s\) draining\n/);
    assert.match(drained.stdout, /drained: \d replica\(s\) moved\n$/);
    assert.deepEqual(await where(), ['de-cloud/ber-1', 'de-cloud/ber-1']);
    for (const n of ['fra-1', 'fra-2'])
      assert.equal((await t.admin.get(`/v1/providers/de-cloud/nodes/${n}`)).body.spec.drain, true);
    const open = await runCli(['uncordon', 'site', 'de-cloud/fra'], env);
    assert.equal(open.code, 0, open.stderr);
    for (const n of ['fra-1', 'fra-2'])
      assert.equal((await t.admin.get(`/v1/providers/de-cloud/nodes/${n}`)).body.spec.drain, false);
  });

  test('draining a provider whose replicas may go nowhere else says which stay and why', async () => {
    const drained = await runCli(['drain', 'provider', 'de-cloud', '--wait'], env);
    assert.equal(drained.code, 1, drained.stdout);
    assert.match(drained.stdout, /^provider de-cloud: 3 node\(s\) draining\n/);
    assert.match(drained.stdout, /shop\/web-\d stays: .*waits for a node to replace de-cloud\/ber-1/);
    assert.match(drained.stderr, /2 replica\(s\) cannot go anywhere; they stay until a node can take them/);
    // Data residency holds: nothing went to France.
    assert.deepEqual(await where(), ['de-cloud/ber-1', 'de-cloud/ber-1']);
    assert.equal((await runCli(['uncordon', 'provider', 'de-cloud'], env)).code, 0);
    const bad = await runCli(['drain', 'region', 'x'], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /cannot drain a 'region': give node, site or provider/);
    const missing = await runCli(['drain', 'site', 'de-cloud/nowhere'], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /Site 'de-cloud\/nowhere' not found/);
  });
});
