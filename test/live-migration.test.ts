// Live migration between two QEMU runtimes (two nodes' instance directories) with real
// VMs under TCG, over loopback: memory and device state over TLS with a one-time
// pre-shared key, the guest going on where it was (its console counter keeps counting,
// no second boot), its forwarded port served by the destination; a disk overlay
// mirrored over TLS-NBD with what the guest wrote on it; a wrong key refused with the
// VM still running on the source. Cold: the stopped disk flattened and copied over
// TLS-PSK, its SHA-256 the same on both sides, running on the destination alone.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { receiveDisk, sendDisk } from '../src/agent/disk-copy.js';
import { type MigrationProgress, QemuRuntime, qmp } from '../src/runtimes/index.js';
import { lastCount, type TestImage, testImage, waitFor } from './support/test-image.js';

const secret = () => ({ identity: 'continuum-test', keyHex: randomBytes(32).toString('hex') });

describe('live migration between QEMU runtimes', () => {
  let dir: string;
  let image: TestImage;
  let source: QemuRuntime;
  let dest: QemuRuntime;

  before(() => {
    image = testImage();
    dir = mkdtempSync(join(tmpdir(), 'continuum-migrate-'));
    source = new QemuRuntime({ dir: join(dir, 'a'), portBindAddress: '127.0.0.1', stopTimeoutMs: 1000 });
    dest = new QemuRuntime({ dir: join(dir, 'b'), portBindAddress: '127.0.0.1', stopTimeoutMs: 1000 });
  });
  after(async () => {
    for (const rt of [source, dest]) for (const i of await rt.list()) await rt.delete(i);
    rmSync(dir, { recursive: true, force: true });
  });

  const vm = (id: string) => ({
    id,
    hostname: id,
    vcpus: 1,
    memoryMiB: 256,
    image: {
      format: 'kernel-initrd' as const,
      files: { kernel: image.kernel, initrd: image.initrd },
      cmdline: image.cmdline,
    },
    ports: [{ guest: 80 }],
  });
  const consoleOf = async (rt: QemuRuntime, id: string) =>
    (await rt.readConsole(id, 0, 16 * 1024 * 1024)).data;

  test('a running VM moves with its memory: the counter goes on, no second boot, served by the destination', async () => {
    const id = 'i-live';
    await source.create(vm(id));
    await source.start(id);
    await waitFor('counter on the source', async () => lastCount(await consoleOf(source, id)) >= 3, 120_000);
    const s = secret();
    const endpoint = await dest.receiveMigration(vm(id), s, '127.0.0.1');
    assert.equal(endpoint.nbdPort, undefined, 'a kernel and initrd only: no disk to mirror');
    const seen: MigrationProgress[] = [];
    const done = await source.sendMigration(id, endpoint, s, {
      onProgress: (p) => seen.push(p),
      progressIntervalMs: 100,
    });
    assert.equal(done.phase, 'completed');
    assert.ok(
      done.downtimeMs !== undefined && done.totalTimeMs !== undefined,
      'QEMU reports downtime and total time',
    );
    assert.ok(done.ramTransferred! > 0);
    assert.ok(seen.length >= 1);
    assert.equal(await dest.incomingState(id), 'completed');
    const running = await dest.completeIncoming(id);
    assert.equal(running.state, 'running');

    // The source's copy is gone and never starts again.
    assert.equal((await source.inspect(id)).state, 'stopped');
    await assert.rejects(source.start(id), /migrated away/);

    // The guest carries on where it was: its console on the destination continues the count.
    const before = lastCount(await consoleOf(source, id));
    await waitFor(
      'counter on the destination',
      async () => lastCount(await consoleOf(dest, id)) > before + 2,
      60_000,
    );
    assert.ok(!(await consoleOf(dest, id)).includes('continuum-test-image ready'), 'no second boot');
    const port = running.ports[0]!.host;
    assert.equal(
      await waitFor('http on the destination', async () => (await fetch(`http://127.0.0.1:${port}/`)).text()),
      `hello from ${id} (${id})\n`,
    );

    // And back again: a VM received once is sent on with a stream of its own.
    const counted = lastCount(await consoleOf(dest, id));
    const back = secret();
    const home = await source.receiveMigration(vm(id), back, '127.0.0.1');
    assert.equal((await dest.sendMigration(id, home, back)).phase, 'completed');
    assert.equal((await source.completeIncoming(id)).state, 'running');
    await waitFor(
      'counter back on the source',
      async () => lastCount(await consoleOf(source, id)) > counted + 1,
      60_000,
    );
    assert.ok(
      !(await consoleOf(source, id)).includes('continuum-test-image ready'),
      'no boot on the way back',
    );
  });

  test('a disk overlay is mirrored over TLS-NBD with what was written on it', async () => {
    const id = 'i-disk';
    const base = join(dir, 'base.raw');
    execFileSync('qemu-img', ['create', '-q', '-f', 'raw', base, '64M']);
    const spec = { ...vm(id), image: { format: 'raw' as const, files: { disk: base } }, ports: [] };
    await source.create(spec);
    await source.start(id);
    // Data only the source's overlay holds, written through the running QEMU (its HMP
    // qemu-io command prints nothing back; the overlays are read offline below).
    await qmp(join(dir, 'a', id, 'qmp.sock'), 'human-monitor-command', {
      'command-line': 'qemu-io virtio0 "write -P 0x5a 1M 2M"',
    });
    const s = secret();
    const endpoint = await dest.receiveMigration(spec, s, '127.0.0.1');
    assert.ok(endpoint.nbdPort, 'a disk to mirror');
    const phases = new Set<string>();
    const done = await source.sendMigration(id, endpoint, s, { onProgress: (p) => phases.add(p.phase) });
    assert.equal(done.phase, 'completed');
    assert.ok(phases.has('mirroring'), 'the disk was mirrored before memory moved');
    assert.equal((await dest.completeIncoming(id)).state, 'running');
    await dest.stop(id, 0);
    const pattern = (overlay: string) =>
      execFileSync('qemu-io', ['-r', '-f', 'qcow2', '-c', 'read -P 0x5a 1M 2M', overlay], {
        encoding: 'utf8',
      });
    // Written on the source, and now on the destination's own overlay of the same base.
    assert.match(pattern(join(dir, 'a', id, 'disk.qcow2')), /read 2097152\/2097152 bytes/);
    const there = pattern(join(dir, 'b', id, 'disk.qcow2'));
    assert.doesNotMatch(there, /verification failed/, there);
    assert.match(there, /read 2097152\/2097152 bytes/);
    // Only the overlay travelled: the base image is the destination's own file.
    const info = JSON.parse(
      execFileSync('qemu-img', ['info', '--output=json', join(dir, 'b', id, 'disk.qcow2')], {
        encoding: 'utf8',
      }),
    );
    assert.equal(info['backing-filename'], base);
  });

  test('the source agent dies mid-migration: QEMU completes alone, and the paused source copy never runs again', async () => {
    const id = 'i-orphan';
    await source.create(vm(id));
    await source.start(id);
    await waitFor('counter on the source', async () => lastCount(await consoleOf(source, id)) >= 2, 120_000);
    const s = secret();
    const endpoint = await dest.receiveMigration(vm(id), s, '127.0.0.1');
    // The sending agent: another process, killed once the stream is under way.
    const runtimes = new URL('../src/runtimes/index.js', import.meta.url).href;
    const agent = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { QemuRuntime } = await import(${JSON.stringify(runtimes)});
         const rt = new QemuRuntime({ dir: ${JSON.stringify(join(dir, 'a'))}, portBindAddress: '127.0.0.1' });
         await rt.sendMigration(${JSON.stringify(id)}, ${JSON.stringify(endpoint)}, ${JSON.stringify(s)}, {
           progressIntervalMs: 10,
           onProgress: (p) => p.phase === 'migrating' && console.log('migrating'),
         });`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve, reject) => {
      agent.stdout!.on('data', (d) => String(d).includes('migrating') && resolve());
      agent.once('exit', () =>
        reject(new Error('the sending process ended before the stream was under way')),
      );
    });
    agent.kill('SIGKILL');
    await once(agent, 'exit');
    await waitFor(
      'completed without its agent',
      async () => (await dest.incomingState(id)) === 'completed',
      60_000,
    );

    // The next agent finds the source copy paused after completion: it ends it, for good.
    const restarted = new QemuRuntime({
      dir: join(dir, 'a'),
      portBindAddress: '127.0.0.1',
      stopTimeoutMs: 1000,
    });
    const obs = await restarted.inspect(id);
    assert.equal(obs.state, 'stopped');
    assert.equal(obs.migratedAway, true);
    await assert.rejects(restarted.start(id), /migrated away/);
    assert.equal((await restarted.inspect(id)).state, 'stopped');
    // The guest goes on at the destination.
    const counted = lastCount(await consoleOf(dest, id));
    assert.equal((await dest.completeIncoming(id)).state, 'running');
    await waitFor(
      'counting on the destination',
      async () => lastCount(await consoleOf(dest, id)) > counted + 1,
      60_000,
    );
  });

  test('a stream with another key is refused, and the VM keeps running on the source', async () => {
    const id = 'i-wrongkey';
    await source.create(vm(id));
    await source.start(id);
    const endpoint = await dest.receiveMigration(vm(id), secret(), '127.0.0.1');
    await assert.rejects(source.sendMigration(id, endpoint, secret(), { timeoutMs: 30_000 }));
    const obs = await source.inspect(id);
    assert.equal(obs.state, 'running');
    const status = await qmp(join(dir, 'a', id, 'qmp.sock'), 'query-status');
    assert.equal(status.status, 'running', 'the guest was not left paused');
    await source.start(id); // still this node's copy
  });

  test('cold: the stopped disk is flattened, copied over TLS-PSK with matching SHA-256, and runs there alone', async () => {
    const id = 'i-cold';
    const base = join(dir, 'cold-base.raw');
    execFileSync('qemu-img', ['create', '-q', '-f', 'raw', base, '64M']);
    // Data in the base image and data only the source's overlay holds.
    execFileSync('qemu-io', ['-f', 'raw', '-c', 'write -P 0x11 0 1M', base]);
    const spec = { ...vm(id), image: { format: 'raw' as const, files: { disk: base } }, ports: [] };
    await source.create(spec);
    await source.start(id);
    await qmp(join(dir, 'a', id, 'qmp.sock'), 'human-monitor-command', {
      'command-line': 'qemu-io virtio0 "write -P 0x5a 1M 2M"',
    });
    const s = secret();
    const file = await dest.prepareReceive(id);
    const wrong = await receiveDisk('127.0.0.1', s, file);
    // Another key: refused at the handshake, and nothing written.
    await source.stop(id, 0);
    const exported = await source.exportDisk(id);
    assert.ok(exported, 'a disk to copy');
    await assert.rejects(sendDisk('127.0.0.1', wrong.port, secret(), exported), /refused the disk copy/);
    wrong.close();

    const receiver = await receiveDisk('127.0.0.1', s, file);
    const progress: number[] = [];
    const sent = await sendDisk('127.0.0.1', receiver.port, s, exported, {
      onProgress: (p) => progress.push(p.diskDone ?? 0),
      intervalMs: 1,
    });
    const got = await receiver.received;
    assert.equal(got.sha256, sent.sha256);
    assert.equal(got.bytes, sent.bytes);
    assert.equal(got.sha256, createHash('sha256').update(readFileSync(exported)).digest('hex'));
    assert.equal(progress.at(-1), sent.bytes, 'progress reaches the whole disk');
    await source.markSent(id);
    assert.equal((await source.inspect(id)).migratedAway, true, 'the source copy never starts again');
    await assert.rejects(source.create(spec), /migrated away/);

    await dest.finishReceive(spec, true);
    assert.equal((await dest.incomingState(id)).toString(), 'completed');
    assert.equal((await dest.inspect(id)).received, true);
    await dest.adoptReceived(id);
    await dest.start(id);
    assert.equal((await dest.inspect(id)).state, 'running');
    await dest.stop(id, 0);
    const overlay = join(dir, 'b', id, 'disk.qcow2');
    // Flattened: no base image under it, and both the base's and the overlay's data.
    const info = JSON.parse(
      execFileSync('qemu-img', ['info', '--output=json', overlay], { encoding: 'utf8' }),
    );
    assert.equal(info['backing-filename'], undefined);
    for (const [pattern, at] of [
      ['0x11', '0 1M'],
      ['0x5a', '1M 2M'],
    ] as const) {
      const out = execFileSync('qemu-io', ['-r', '-f', 'qcow2', '-c', `read -P ${pattern} ${at}`, overlay], {
        encoding: 'utf8',
      });
      assert.doesNotMatch(out, /verification failed/, out);
    }

    // A failed cold migration gives the source its copy back.
    await source.reclaim(id);
    assert.equal((await source.inspect(id)).migratedAway, undefined);
  });
});
