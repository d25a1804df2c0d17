// One contract, three runtimes: what the agent relies on from whatever runs instances —
// QEMU (a real VM under TCG here), runc (a real container) and the fleet simulator's
// runtime. Create is idempotent and leaves the instance stopped; start runs it and its
// output grows; reboot keeps it running; stop stops it and start runs it again; an
// instance that dies unasked is reported crashed; a fresh runtime object on the same
// directory adopts what runs (runtimes that keep state on disk); delete removes it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  type InstanceRuntimeSpec,
  QemuRuntime,
  RuncRuntime,
  type Runtime,
  SimulatedRuntime,
} from '../src/runtimes/index.js';
import { testContainerImage } from './support/test-container.js';
import { testImage, waitFor } from './support/test-image.js';

interface Subject {
  name: string;
  /** A runtime over `dir` (a second one over the same dir stands for a restarted agent). */
  make(dir: string): Runtime;
  spec(id: string): InstanceRuntimeSpec;
  /** Its state survives the runtime object (kept on disk). */
  persistent: boolean;
  /** Makes the running instance die without being asked. */
  crash(rt: Runtime, id: string): Promise<void>;
  /** Output an instance writes once it really runs. */
  ready: string;
}

const vm = (): Subject => {
  const image = testImage();
  return {
    name: 'QEMU',
    make: (dir) => new QemuRuntime({ dir, portBindAddress: '127.0.0.1', stopTimeoutMs: 1000 }),
    spec: (id) => ({
      id,
      hostname: 'contract-0',
      vcpus: 1,
      memoryMiB: 256,
      image: {
        format: 'kernel-initrd',
        files: { kernel: image.kernel, initrd: image.initrd },
        cmdline: image.cmdline,
      },
      ports: [],
    }),
    persistent: true,
    crash: async (rt, id) => {
      process.kill((await rt.inspect(id)).pid!, 'SIGKILL');
    },
    ready: 'continuum-test-image ready',
  };
};

const container = (): Subject => ({
  name: 'runc',
  make: (dir) => new RuncRuntime({ dir, stopTimeoutMs: 1000 }),
  spec: (id) => ({
    id,
    hostname: 'contract-0',
    vcpus: 1,
    memoryMiB: 64,
    image: { format: 'oci', files: { oci: testContainerImage() } },
    ports: [],
    // Dying unasked must show as a crash (the supervisor would restart it otherwise).
    container: { restart: 'never' },
  }),
  persistent: true,
  crash: async (rt, id) => {
    process.kill((await rt.inspect(id)).pid!, 'SIGKILL');
  },
  ready: 'tick 1 on contract-0',
});

const simulated = (): Subject => ({
  name: 'simulated',
  make: () => new SimulatedRuntime(),
  spec: (id) => ({
    id,
    hostname: 'contract-0',
    vcpus: 1,
    memoryMiB: 64,
    image: { format: 'raw', files: {} },
    ports: [],
  }),
  persistent: false,
  crash: async (rt, id) => (rt as SimulatedRuntime).crash(id),
  ready: 'simulated boot of contract-0',
});

for (const make of [simulated, container, vm]) {
  const s = make();
  describe(`runtime contract: ${s.name}`, () => {
    const dir = mkdtempSync(join(tmpdir(), `continuum-contract-${s.name.toLowerCase()}-`));
    const rt = s.make(dir);
    const id = 'i-contract';
    const output = async () => (await rt.readConsole(id, 0, 4 * 1024 * 1024)).data;
    after(async () => {
      for (const i of await rt.list()) await rt.delete(i);
      rmSync(dir, { recursive: true, force: true });
    });

    test('create is idempotent and leaves the instance stopped; start runs it', async () => {
      assert.equal((await rt.inspect(id)).state, 'absent');
      await rt.create(s.spec(id));
      await rt.create(s.spec(id));
      assert.equal((await rt.inspect(id)).state, 'stopped');
      assert.deepEqual(await rt.list(), [id]);
      const obs = await rt.start(id);
      assert.equal(obs.state, 'running');
      await waitFor('its output', async () => (await output()).includes(s.ready), 120_000);
      const { next } = await rt.readConsole(id, 0, 4 * 1024 * 1024);
      const from = await rt.readConsole(id, next);
      assert.equal(
        from.next - next,
        Buffer.byteLength(from.data),
        'reading from an offset gives what came since',
      );
    });

    // Only a runtime that keeps its state on disk can be adopted (the simulator's cannot).
    if (s.persistent)
      test('a fresh runtime object adopts the running instance', async () => {
        const fresh = s.make(dir);
        assert.deepEqual(await fresh.list(), [id]);
        const obs = await fresh.inspect(id);
        assert.equal(obs.state, 'running');
        assert.equal(obs.pid, (await rt.inspect(id)).pid);
      });

    test('reboot keeps it running; stop stops it; start runs it again', async () => {
      await rt.reboot(id);
      await waitFor('running after the reboot', async () => (await rt.inspect(id)).state === 'running');
      await rt.stop(id);
      assert.equal((await rt.inspect(id)).state, 'stopped');
      assert.equal((await rt.start(id)).state, 'running');
    });

    test('an instance that dies unasked is reported crashed', async () => {
      await s.crash(rt, id);
      await waitFor('the crash seen', async () => (await rt.inspect(id)).state === 'crashed', 30_000);
      assert.equal((await rt.start(id)).state, 'running', 'and it can be started again');
    });

    test('delete removes it', async () => {
      await rt.delete(id);
      assert.equal((await rt.inspect(id)).state, 'absent');
      assert.deepEqual(await rt.list(), []);
    });
  });
}
