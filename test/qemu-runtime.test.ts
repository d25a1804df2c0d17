// The QEMU runtime with real virtual machines (TCG here): boot, serve HTTP through a
// forwarded port, console capture, stop/start/reboot, crash detection, adoption by a
// fresh runtime object (as after an agent restart) and deletion.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { QemuRuntime } from '../src/runtimes/index.js';
import { type TestImage, testImage, waitFor } from './support/test-image.js';

describe('QEMU runtime', () => {
  let dir: string;
  let image: TestImage;
  let rt: QemuRuntime;
  const id = 'i-runtime-test';

  before(() => {
    image = testImage();
    dir = mkdtempSync(join(tmpdir(), 'continuum-qemu-'));
    rt = new QemuRuntime({ dir, portBindAddress: '127.0.0.1', stopTimeoutMs: 1000 });
  });
  after(async () => {
    for (const i of await rt.list()) await rt.delete(i);
    rmSync(dir, { recursive: true, force: true });
  });

  const console = async () => (await rt.readConsole(id, 0, 16 * 1024 * 1024)).data;
  const http = async (port: number, path = '/') => (await fetch(`http://127.0.0.1:${port}${path}`)).text();

  test('a VM boots, reads its seed, serves HTTP on a forwarded port and counts on its console', async () => {
    await rt.create({
      id,
      hostname: 'web-0',
      vcpus: 1,
      memoryMiB: 256,
      image: {
        format: 'kernel-initrd',
        files: { kernel: image.kernel, initrd: image.initrd },
        cmdline: image.cmdline,
      },
      userData: '#!/bin/sh\necho user-data ran\n',
      ports: [{ guest: 80 }],
    });
    assert.equal((await rt.inspect(id)).state, 'stopped');
    const obs = await rt.start(id);
    assert.equal(obs.state, 'running');
    assert.equal(obs.accelerator, 'tcg');
    const port = obs.ports[0]!.host;
    await waitFor('boot', async () =>
      (await console()).includes('continuum-test-image ready hostname=web-0 instance=i-runtime-test'),
    );
    assert.equal(await waitFor('http', () => http(port)), 'hello from web-0 (i-runtime-test)\n');
    assert.equal(await http(port, '/user-data.out'), 'user-data ran\n');
    await waitFor('counter', async () => /continuum-counter 3\b/.test(await console()));
    const tail = await rt.readConsole(id, 100);
    assert.ok(tail.next > 100);
  });

  test('a new runtime object adopts the running VM from disk', async () => {
    const fresh = new QemuRuntime({ dir, portBindAddress: '127.0.0.1', stopTimeoutMs: 1000 });
    assert.deepEqual(await fresh.list(), [id]);
    const obs = await fresh.inspect(id);
    assert.equal(obs.state, 'running');
    assert.equal(obs.pid, (await rt.inspect(id)).pid);
  });

  test('stop, start and reboot keep the instance and its forwarded port', async () => {
    const before = await rt.inspect(id);
    await rt.stop(id);
    assert.equal((await rt.inspect(id)).state, 'stopped');
    const again = await rt.start(id);
    assert.equal(again.state, 'running');
    assert.equal(again.ports[0]!.host, before.ports[0]!.host);
    assert.notEqual(again.pid, before.pid);
    await waitFor(
      'second boot',
      async () => (await console()).split('continuum-test-image ready').length === 3,
    );
    await rt.reboot(id);
    await waitFor('reboot', async () => (await console()).split('continuum-test-image ready').length === 4);
    const rebooted = await rt.inspect(id);
    assert.equal(rebooted.pid, again.pid, 'a reboot resets the guest inside the same QEMU process');
  });

  test('a VM that dies without being stopped is reported as crashed', async () => {
    const { pid } = await rt.inspect(id);
    process.kill(pid!, 'SIGKILL');
    await waitFor('crash detected', async () => (await rt.inspect(id)).state === 'crashed');
  });

  test('delete stops the VM and removes everything of it', async () => {
    await rt.start(id);
    await rt.delete(id);
    assert.equal((await rt.inspect(id)).state, 'absent');
    assert.ok(!existsSync(join(dir, id)));
  });

  test('a disk image runs on a qcow2 overlay of the cached base, which stays untouched', async () => {
    const base = join(dir, 'base.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '64M']);
    const digest = () => createHash('sha256').update(readFileSync(base)).digest('hex');
    const before = digest();
    await rt.create({
      id: 'i-disk',
      hostname: 'disk-0',
      vcpus: 1,
      memoryMiB: 128,
      diskGiB: 1,
      image: { format: 'qcow2', files: { disk: base } },
      ports: [],
    });
    const info = JSON.parse(
      execFileSync('qemu-img', ['info', '--output=json', join(dir, 'i-disk', 'disk.qcow2')], {
        encoding: 'utf8',
      }),
    );
    assert.equal(info.format, 'qcow2');
    assert.equal(info['backing-filename'], base);
    assert.equal(info['virtual-size'], 1024 ** 3, 'the overlay has the requested size');
    assert.equal((await rt.start('i-disk')).state, 'running');
    await rt.delete('i-disk');
    assert.equal(digest(), before, 'the base image is never written');
  });
});
