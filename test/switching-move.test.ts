// Switching inside the federation with real parts: a project whose VM runs on one
// provider's node (a real agent, a real QEMU guest) switches to another provider. On the
// test's clock the transition moves the VM there (live: the planner's policy move), ends
// when it runs there, and after the retrieval period the old provider's node erases what
// the project left: the certificate lists the image files it deleted (with their
// checksums) and the instance it verified gone, and the files are really gone from that
// node, while the VM runs on at its new provider.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { project, provider, site, workload } from './support/fixtures.js';
import { waitFor } from './support/test-image.js';
import { startVmFederation, type VmFederation } from './support/vm-federation.js';

const DAY = 86_400_000;

/** Passes of the switching controller until the request is in `phase`. */
async function reaches(sw: () => Promise<any>, phase: string, what: string, timeoutMs = 60_000) {
  await waitFor(
    what,
    async () => {
      await f.cp.switching.tick();
      return (await sw()).status.phase === phase;
    },
    timeoutMs,
  );
}

let f: VmFederation;

describe('switching to another provider of the federation', () => {
  let now = new Date('2027-02-01T08:00:00Z');
  const instance = async () => (await f.admin.get('/v1/projects/shop/instances/web-0')).body;

  before(async () => {
    f = await startVmFederation(
      'switching',
      [
        provider('edge-a'),
        site('edge-a', 'fra'),
        provider('edge-b', { headquarters: 'FR' }),
        site('edge-b', 'par', { country: 'FR', location: { latitude: 48.85, longitude: 2.35 } }),
        project('shop'),
      ],
      'shop',
      { clock: () => now, switchingIntervalMs: 1000 },
    );
    await f.startAgent('edge-a', 'fra', 'node-a');
    await f.startAgent('edge-b', 'par', 'node-b');
    const r = await f.admin.post('/v1/apply', {
      documents: [workload('shop', 'web', { placement: { providers: { allow: ['edge-a'] } } })],
    });
    assert.equal(r.status, 200, r.text);
    await waitFor(
      'web-0 running on edge-a',
      async () => {
        const i = await instance();
        return i?.status?.phase === 'Running' && i.spec.node === 'edge-a/node-a';
      },
      120_000,
    );
  });
  after(async () => f?.close());

  test('the transition moves the VM to the new provider; the erasure empties the old node, with a certificate', async () => {
    const uid = (await instance()).metadata.uid;
    const cached = readdirSync(join(f.dir, 'node-a', 'images', 'sha256'));
    assert.ok(cached.length >= 1, 'node-a holds the image files');
    const made = await f.admin.post('/v1/apply', {
      documents: [
        {
          kind: 'SwitchingRequest',
          metadata: { name: 'move', project: 'shop' },
          spec: { from: 'edge-a', to: { provider: 'edge-b' } },
        },
      ],
    });
    assert.equal(made.status, 200, made.text);
    const sw = async () => (await f.admin.get('/v1/projects/shop/switchings/move')).body;
    // Notice 0: the transition starts; the workload may no longer use edge-a.
    await waitFor('the transition', async () => (await sw()).status.phase !== 'Notice');
    const w = (await f.admin.get('/v1/projects/shop/workloads/web')).body;
    assert.deepEqual(w.spec.placement.providers, { allow: ['edge-b'], deny: ['edge-a'] });
    await reaches(sw, 'Retrieval', 'the VM to run on edge-b and the transition to end', 180_000);
    const i = await instance();
    assert.equal(i.spec.node, 'edge-b/node-b');
    assert.equal(i.metadata.uid, uid, 'the same instance, moved (not recreated)');
    const residency = (await f.admin.get('/v1/projects/shop/residency')).body;
    assert.deepEqual(
      residency.stays.map((s: any) => [s.provider, s.how]),
      [
        ['edge-a', 'placed'],
        ['edge-b', 'migrated'],
      ],
    );

    // Retrieval over: erasure on edge-a's node.
    now = new Date(now.getTime() + 31 * DAY);
    await reaches(sw, 'Completed', 'the erasure', 60_000);
    const cert = (await f.admin.get('/v1/projects/shop/switchings/move/erasure-certificate')).body;
    const doc = JSON.parse(cert.certificate);
    const images = doc.artefacts.filter((a: any) => a.kind === 'image' && a.where === 'edge-a/node-a');
    assert.deepEqual(
      images.map((a: any) => a.sha256).sort(),
      [...cached].sort(),
      'each cached file, by checksum',
    );
    // The source's copy of the moved VM: found gone, or (its removal still under way when
    // the erasure came) deleted by it, file by file.
    const absent = doc.verifiedAbsent.some(
      (v: any) => v.where === 'edge-a/node-a' && v.instances.includes(uid),
    );
    const deleted = doc.artefacts.some(
      (a: any) => a.where === 'edge-a/node-a' && a.name.startsWith(`${uid}/`),
    );
    assert.ok(
      absent !== deleted,
      `the instance is either verified absent or deleted: ${JSON.stringify(doc)}`,
    );
    assert.ok(!doc.artefacts.some((a: any) => a.where.startsWith('edge-b')), 'nothing of the new provider');
    for (const sha of cached)
      assert.ok(!existsSync(join(f.dir, 'node-a', 'images', 'sha256', sha)), `${sha} gone from node-a`);
    assert.ok(
      !existsSync(join(f.dir, 'node-a', 'instances', uid)),
      "the instance's directory is gone from node-a",
    );
    // The project lives on at its new provider.
    assert.equal((await instance()).status.phase, 'Running');
    assert.ok(readdirSync(join(f.dir, 'node-b', 'images', 'sha256')).length >= 1);
  });

  test('out of the federation: after the export and retrieval, the running VM is erased on its node and its rows go', async () => {
    const r = await f.admin.post('/v1/apply', {
      documents: [
        project('lab'),
        {
          kind: 'Image',
          metadata: { name: 'testvm', project: 'lab' },
          spec: (await f.admin.get('/v1/projects/shop/images/testvm')).body.spec,
        },
      ],
    });
    assert.equal(r.status, 200, r.text);
    // The same content as shop's image: uploaded again under lab.
    for (const file of ['kernel', 'initrd']) {
      const body = Buffer.from(
        await (
          await fetch(`${f.cp.url}/v1/projects/shop/images/testvm/files/${file}`, {
            headers: { authorization: `Bearer ${f.cp.adminToken}` },
          })
        ).arrayBuffer(),
      );
      assert.equal((await f.admin.put(`/v1/projects/lab/images/testvm/files/${file}`, body)).status, 200);
    }
    const w = await f.admin.post('/v1/apply', {
      documents: [workload('lab', 'job', { placement: { providers: { allow: ['edge-b'] } } })],
    });
    assert.equal(w.status, 200, w.text);
    const job = async () => (await f.admin.get('/v1/projects/lab/instances/job-0')).body;
    await waitFor('job-0 running', async () => (await job())?.status?.phase === 'Running', 120_000);
    const uid = (await job()).metadata.uid;
    const made = await f.admin.post('/v1/apply', {
      documents: [
        {
          kind: 'SwitchingRequest',
          metadata: { name: 'out', project: 'lab' },
          spec: { from: 'edge-b', to: { outside: 'elsewhere' } },
        },
      ],
    });
    assert.equal(made.status, 200, made.text);
    const sw = async () => (await f.admin.get('/v1/projects/lab/switchings/out')).body;
    await waitFor('the transition', async () => (await sw()).status.phase === 'Transition');
    // The export, downloaded through the API, ends the transition.
    const job0 = (await f.admin.post('/v1/projects/lab/exports', {})).body;
    await waitFor(
      'the export',
      async () => (await f.admin.get(`/v1/projects/lab/exports/${job0.id}`)).body.phase === 'Ready',
    );
    const res = await fetch(`${f.cp.url}/v1/projects/lab/exports/${job0.id}/bundle`, {
      headers: { authorization: `Bearer ${f.cp.adminToken}` },
    });
    await res.arrayBuffer();
    await reaches(sw, 'Retrieval', 'the retrieval period');
    assert.equal((await job()).status.phase, 'Running', 'it runs on during retrieval');
    now = new Date(now.getTime() + 31 * DAY);
    await reaches(sw, 'Completed', 'the erasure', 60_000);
    const doc = JSON.parse(
      (await f.admin.get('/v1/projects/lab/switchings/out/erasure-certificate')).body.certificate,
    );
    const there = doc.artefacts.filter(
      (a: any) => a.where === 'edge-b/node-b' && a.name.startsWith(`${uid}/`),
    );
    const kinds = new Set(there.map((a: any) => a.kind));
    for (const k of ['cloud-init', 'console-log', 'metadata'])
      assert.ok(kinds.has(k), `the certificate lists its ${k}: ${[...kinds]}`);
    assert.ok(there.every((a: any) => /^[0-9a-f]{64}$/.test(a.sha256) && a.deletedAt));
    // The image files stay on node-b: shop's instance there uses the same content.
    assert.ok(doc.kept.some((k: any) => k.where === 'edge-b/node-b'));
    assert.ok(doc.artefacts.some((a: any) => a.kind === 'manifest' && a.name === 'Workload/lab/job'));
    assert.ok(!existsSync(join(f.dir, 'node-b', 'instances', uid)), 'gone from the node');
    await waitFor(
      'its row to go',
      async () => (await f.admin.get('/v1/projects/lab/instances/job-0')).status === 404,
    );
    // Not made again: nothing of lab runs on node-b after a while.
    await new Promise((r) => setTimeout(r, 3000));
    assert.ok(!existsSync(join(f.dir, 'node-b', 'instances', uid)));
    assert.equal((await instance()).status.phase, 'Running', "shop's VM is untouched");
  });
});
