// The runc runtime with real containers, beyond the shared contract: the memory limit is
// enforced by the kernel (a container that exceeds it is killed, and its supervisor
// restarts it and counts), the command and environment come from the spec, restart
// policies, and a broken image is refused with a reason.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { type InstanceRuntimeSpec, RuncRuntime } from '../src/runtimes/index.js';
import { portFree } from '../src/runtimes/ports.js';
import { testContainerImage } from './support/test-container.js';
import { waitFor } from './support/test-image.js';

describe('runc runtime', () => {
  const dir = mkdtempSync(join(tmpdir(), 'continuum-runc-'));
  const rt = new RuncRuntime({ dir, stopTimeoutMs: 1000, portBindAddress: '127.0.0.1' });
  const image = testContainerImage();
  const spec = (id: string, over: Partial<InstanceRuntimeSpec> = {}): InstanceRuntimeSpec => ({
    id,
    hostname: id,
    vcpus: 1,
    memoryMiB: 32,
    image: { format: 'oci', files: { oci: image } },
    ports: [],
    ...over,
  });
  const output = async (id: string) => (await rt.readConsole(id, 0, 1024 * 1024)).data;
  after(async () => {
    for (const i of await rt.list()) await rt.delete(i);
    rmSync(dir, { recursive: true, force: true });
  });

  test('a container that exceeds its memory is killed by the kernel and restarted by its supervisor', async () => {
    // 32 MiB allowed; the shell tries to hold 100 MiB in a variable.
    const hog =
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell's ${#x}, not a template
      'echo start; x=$(dd if=/dev/zero bs=1M count=100 2>/dev/null | tr "\\0" a); echo survived ${#x}';
    await rt.create(spec('hog', { container: { command: ['/bin/sh', '-c', hog] } }));
    await rt.start('hog');
    await waitFor('two restarts', async () => (await rt.restarts('hog')) >= 2, 60_000);
    const out = await output('hog');
    assert.match(out, /exited with 137/, 'SIGKILL from the out-of-memory killer');
    assert.doesNotMatch(out, /survived/);
    assert.ok(out.split('start\n').length >= 3, out);
    const config = JSON.parse(readFileSync(join(dir, 'hog', 'bundle', 'config.json'), 'utf8'));
    assert.equal(config.linux.resources.memory.limit, 32 * 1024 * 1024);
    assert.deepEqual(config.linux.resources.cpu, { period: 100_000, quota: 100_000 });
    await rt.delete('hog');
  });

  test('the command and environment come from the spec; on-failure leaves a clean exit alone', async () => {
    await rt.create(
      spec('once', {
        container: {
          command: ['/bin/sh', '-c', 'echo "greeting=$GREETING host=$(hostname)"'],
          env: { GREETING: 'hallo' },
          restart: 'on-failure',
        },
      }),
    );
    await rt.start('once');
    await waitFor('its line', async () => (await output('once')).includes('greeting=hallo host=once'));
    await waitFor('it stays ended', async () => (await rt.inspect('once')).state === 'stopped');
    assert.equal(await rt.restarts('once'), 0);
    // What an erasure records: every file, the unpacked root filesystem's included.
    const names = (await rt.files('once')).map((f) => f.name);
    assert.ok(names.includes('output.log'), names.join(' '));
    assert.ok(names.includes('bundle/config.json'), names.join(' '));
    assert.ok(
      names.some((n) => n.startsWith('bundle/rootfs/')),
      names.join(' '),
    );
    await rt.delete('once');
  });

  test("the image's own command runs in a network namespace of its own, its port forwarded from the host", async () => {
    await rt.create(spec('web', { ports: [{ guest: 8080 }] }));
    const obs = await rt.start('web');
    assert.equal(obs.ports.length, 1);
    const port = obs.ports[0]!.host;
    await waitFor('ticks', async () => (await output('web')).includes('tick 2 on web'));
    const page = await waitFor('HTTP through the forwarded port', async () =>
      (await fetch(`http://127.0.0.1:${port}/`)).text(),
    );
    assert.equal(page, 'hello from the test container\n');
    const meta = JSON.parse(readFileSync(join(dir, 'web', 'meta.json'), 'utf8'));
    const links = execFileSync('ip', ['-n', meta.net.ns, '-o', 'addr', 'show', 'eth0'], { encoding: 'utf8' });
    assert.match(links, new RegExp(`inet ${meta.net.ctrIp.replaceAll('.', '\\.')}/30`));
    // The same port after a restart of the container, and after a new runtime object adopts it.
    await rt.stop('web');
    assert.equal((await rt.start('web')).ports[0]!.host, port);
    const fresh = new RuncRuntime({ dir, portBindAddress: '127.0.0.1' });
    assert.equal((await fresh.inspect('web')).ports[0]!.host, port);
    await waitFor('HTTP again', async () => (await fetch(`http://127.0.0.1:${port}/`)).ok);
    // Its supervisor killed outright, then the container deleted: its namespace, its host
    // side and its port forwarder go with it.
    process.kill(Number(readFileSync(join(dir, 'web', 'supervisor.pid'), 'utf8')), 'SIGKILL');
    await rt.delete('web');
    assert.ok(await portFree('127.0.0.1', port), 'the forwarded port is free again');
    assert.doesNotMatch(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }), new RegExp(meta.net.ns));
    assert.doesNotMatch(
      execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }),
      new RegExp(meta.net.hostIf),
    );
  });

  test('a supervisor sent SIGTERM (a shutdown) ends its container, though its shell ignores SIGTERM', async () => {
    await rt.create(spec('term'));
    const { pid } = await rt.start('term');
    const supervisor = Number(readFileSync(join(dir, 'term', 'supervisor.pid'), 'utf8'));
    process.kill(supervisor, 'SIGTERM');
    await waitFor(
      'the supervisor gone',
      async () => {
        try {
          process.kill(supervisor, 0);
          return false;
        } catch {
          return true;
        }
      },
      20_000,
    );
    assert.throws(() => process.kill(pid!, 0), 'the container process is gone too');
    assert.equal((await rt.inspect('term')).state, 'stopped');
    await rt.delete('term');
  });

  test('an image that is not an OCI layout is refused with the reason, and nothing runs', async () => {
    const bad = join(dir, 'bad.tar');
    writeFileSync(bad, 'not a tar archive');
    await assert.rejects(
      rt.create(spec('bad', { image: { format: 'oci', files: { oci: bad } } })),
      /unpacking the image failed/,
    );
    await assert.rejects(
      rt.create(spec('vm', { image: { format: 'raw', files: {} } })),
      /needs an OCI image/,
    );
  });
});
