// Image uploads are verified against the declared sha256 and stored content-addressed.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli } from './support/cli.js';
import { startTestControlPlane, type TestControlPlane } from './support/control-plane.js';
import { TEST_ENGINES } from './support/engines.js';
import { project } from './support/fixtures.js';
import { testContainerImage } from './support/test-container.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

for (const engine of TEST_ENGINES) {
  describe(`images on ${engine}`, () => {
    let t: TestControlPlane;
    before(async () => {
      t = await startTestControlPlane(engine);
      await t.admin.post('/v1/projects', project('img'));
    });
    after(async () => t.close());

    test('a kernel + initrd image becomes Available once both files match, and downloads intact', async () => {
      const kernel = randomBytes(300_000);
      const initrd = randomBytes(123_456);
      const a = t.admin;
      const created = await a.post('/v1/projects/img/images', {
        metadata: { name: 'tiny' },
        spec: {
          format: 'kernel-initrd',
          files: { kernel: { sha256: sha(kernel) }, initrd: { sha256: sha(initrd) } },
          cmdline: 'console=ttyS0',
        },
      });
      assert.equal(created.status, 201, created.text);
      assert.equal(created.body.status.phase, 'AwaitingUpload');
      const up1 = await a.put('/v1/projects/img/images/tiny/files/kernel', kernel);
      assert.equal(up1.status, 200, up1.text);
      assert.equal(up1.body.status.phase, 'AwaitingUpload');
      const up2 = await a.put('/v1/projects/img/images/tiny/files/initrd', initrd);
      assert.equal(up2.body.status.phase, 'Available');
      assert.equal(up2.body.status.files.initrd.size, initrd.length);
      const down = await fetch(`${t.url}/v1/projects/img/images/tiny/files/kernel`, {
        headers: { authorization: `Bearer ${t.adminToken}` },
      });
      assert.equal(down.status, 200);
      assert.ok(Buffer.from(await down.arrayBuffer()).equals(kernel));
      assert.equal(down.headers.get('x-content-sha256'), sha(kernel));
    });

    test('content with the wrong checksum is refused and nothing is kept', async () => {
      const good = randomBytes(50_000);
      const a = t.admin;
      await a.post('/v1/projects/img/images', {
        metadata: { name: 'disk' },
        spec: { format: 'raw', files: { disk: { sha256: sha(good) } } },
      });
      const bad = Buffer.concat([good.subarray(0, 49_999), Buffer.from([good[49_999]! ^ 1])]);
      const r = await a.put('/v1/projects/img/images/disk/files/disk', bad);
      assert.equal(r.status, 422);
      assert.equal(r.body.error.code, 'checksum_mismatch');
      assert.match(
        r.body.error.message,
        new RegExp(`has sha256 ${sha(bad)}, but image 'disk' declares ${sha(good)}`),
      );
      assert.equal((await a.get('/v1/projects/img/images/disk')).body.status.phase, 'AwaitingUpload');
      const dir = join(t.cp.dataDir, 'images');
      assert.ok(!existsSync(join(dir, 'sha256', sha(bad))));
      assert.deepEqual(readdirSync(join(dir, 'tmp')), [], 'no temporary file left');
      const notDeclared = await a.put('/v1/projects/img/images/disk/files/kernel', good);
      assert.equal(notDeclared.status, 422);
      assert.match(notDeclared.body.error.message, /declares no kernel file/);
      const wrongType = await a.request('PUT', '/v1/projects/img/images/disk/files/disk', '{}');
      assert.equal(wrongType.status, 415);
    });

    test('changing the declared checksum invalidates the earlier upload', async () => {
      const v1 = randomBytes(1000);
      const v2 = randomBytes(1000);
      const a = t.admin;
      const spec = (h: string) => ({
        metadata: { name: 'rolling' },
        spec: { format: 'qcow2', files: { disk: { sha256: h } } },
      });
      await a.post('/v1/projects/img/images', spec(sha(v1)));
      assert.equal(
        (await a.put('/v1/projects/img/images/rolling/files/disk', v1)).body.status.phase,
        'Available',
      );
      const changed = await a.put('/v1/projects/img/images/rolling', spec(sha(v2)));
      assert.equal(changed.body.status.phase, 'AwaitingUpload');
      assert.deepEqual(changed.body.status.files, {});
      const invalid = await a.post('/v1/projects/img/images', {
        metadata: { name: 'broken' },
        spec: { format: 'qcow2', files: { kernel: { sha256: sha(v1) } } },
      });
      assert.equal(invalid.status, 422);
      assert.deepEqual(
        invalid.body.error.details.map((d: any) => d.path),
        ['spec.files.disk', 'spec.files.kernel'],
      );
    });

    test('an OCI archive is kept only when its layout holds together; image import says what runs', async () => {
      const good = readFileSync(testContainerImage());
      const declare = (name: string, archive: Buffer, ref?: string) =>
        t.admin.post('/v1/projects/img/images', {
          metadata: { name },
          spec: { format: 'oci', files: { oci: { sha256: sha(archive) } }, ...(ref ? { ref } : {}) },
        });
      assert.equal((await declare('ok', good)).status, 201);
      const up = await t.admin.put('/v1/projects/img/images/ok/files/oci', good);
      assert.equal(up.status, 200, up.text);
      assert.equal(up.body.status.phase, 'Available');
      assert.match(up.body.status.oci.manifest, /^sha256:[0-9a-f]{64}$/);
      assert.ok(up.body.status.oci.layers >= 1);

      // One blob's content changed: its name no longer says what it holds.
      const dir = mkdtempSync(join(tmpdir(), 'oci-bad-'));
      try {
        execFileSync('tar', ['-xf', testContainerImage(), '-C', dir]);
        const blobs = join(dir, 'blobs', 'sha256');
        const biggest = readdirSync(blobs)
          .map((f) => ({ f, size: statSync(join(blobs, f)).size }))
          .sort((a, b) => b.size - a.size)[0]!.f;
        appendFileSync(join(blobs, biggest), 'x');
        const bad = execFileSync('tar', ['-cf', '-', '-C', dir, '.'], { maxBuffer: 64 * 1024 * 1024 });
        assert.equal((await declare('tampered', bad)).status, 201);
        const refused = await t.admin.put('/v1/projects/img/images/tampered/files/oci', bad);
        assert.equal(refused.status, 422, refused.text);
        assert.match(
          refused.body.error.message,
          new RegExp(
            `blob blobs/sha256/${biggest} has sha256 [0-9a-f]{64}: its content does not match its name`,
          ),
        );
        const after = (await t.admin.get('/v1/projects/img/images/tampered')).body;
        assert.equal(after.status.phase, 'AwaitingUpload');
        assert.equal(existsSync(join(t.cp.dataDir, 'images', 'sha256', sha(bad))), false, 'nothing kept');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      // A tag the layout does not have.
      assert.equal((await declare('notag', good, 'v9')).status, 201);
      const notag = await t.admin.put('/v1/projects/img/images/notag/files/oci', good);
      assert.equal(notag.status, 422);
      assert.match(notag.body.error.message, /it has no tag 'v9' \(tags: /);

      const cli = await runCli([
        '--server',
        t.url,
        '--token',
        t.adminToken,
        '-p',
        'img',
        'image',
        'import',
        'imported',
        testContainerImage(),
      ]);
      assert.equal(cli.code, 0, cli.stderr);
      assert.match(
        cli.stdout,
        /^image\/img\/imported Available\n {2}tag \S+, manifest sha256:[0-9a-f]{64}, \d+ layer\(s\), \d+ bytes: digests verified$/m,
      );
    });
  });
}
