// Live migration end to end with real parts: one control plane, two real agent processes
// of two providers in two countries, a real VM (TCG) moved from one to the other by a
// Migration created through the API. The guest goes on without a reboot (its console
// counter continues on the destination), the HTTP service answers on the new node's
// forwarded port, the instance is bound to the destination with a higher fence, and
// downtime and total time are recorded. Bad requests are refused with the scheduler's
// words and change nothing.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ControlPlane } from '../src/control-plane/index.js';
import { QemuRuntime } from '../src/runtimes/index.js';
import { simInventory } from '../src/sim/index.js';
import { newUid } from '../src/store/index.js';
import { runCli, startAgentProcess } from './support/cli.js';
import type { Http } from './support/control-plane.js';
import { project, provider, site, workload } from './support/fixtures.js';
import { pidsMatching } from './support/processes.js';
import { lastCount, waitFor } from './support/test-image.js';
import { startVmFederation, type VmFederation } from './support/vm-federation.js';

describe('live migration across providers', () => {
  let f: VmFederation;
  let dir: string;
  let cp: ControlPlane;
  let admin: Http;
  let agents: VmFederation['agents'];

  const startAgent = (name: string, providerName: string, siteName: string) =>
    f.startAgent(providerName, siteName, name);
  const instance = async () => (await admin.get('/v1/projects/demo/instances/web-0')).body;
  const consoleText = async () => {
    let text = '';
    let offset = 0;
    for (;;) {
      const r = await admin.get(`/v1/projects/demo/instances/web-0/console?offset=${offset}&limit=1048576`);
      if (r.status !== 200) throw new Error(r.text);
      text += r.body.data;
      if (r.body.next === offset) return text;
      offset = r.body.next;
    }
  };
  const migration = (name: string, spec: object) => ({
    kind: 'Migration',
    metadata: { name, project: 'demo' },
    spec,
  });

  before(async () => {
    f = await startVmFederation(
      'migration',
      [
        provider('edge-de'),
        site('edge-de', 'fra'),
        provider('edge-fr', { headquarters: 'FR' }),
        site('edge-fr', 'par', { country: 'FR', location: { latitude: 48.85, longitude: 2.35 } }),
        provider('edge-pl', { headquarters: 'PL' }),
        site('edge-pl', 'waw', { country: 'PL', location: { latitude: 52.23, longitude: 21.01 } }),
        project('demo'),
      ],
      'demo',
    );
    ({ dir, cp, admin, agents } = f);
    await startAgent('node-de', 'edge-de', 'fra');
    await startAgent('node-fr', 'edge-fr', 'par');
  });

  after(async () => f.close());

  test('a running VM moves live to another provider in another country: no reboot, served there, fenced anew', async () => {
    const applied = await admin.post('/v1/apply', {
      documents: [
        workload('demo', 'web', {
          image: 'testvm',
          ports: [{ guest: 80 }],
          placement: { countries: ['DE', 'FR'], node: 'edge-de/node-de' },
        }),
      ],
    });
    assert.equal(applied.status, 200, applied.text);
    await waitFor('running on node-de', async () => (await instance()).status?.phase === 'Running', 180_000);
    await waitFor('counting', async () => lastCount(await consoleText()) >= 3, 120_000);
    const before = await instance();
    assert.equal(before.spec.node, 'edge-de/node-de');

    // Pinned to node-de: the pin is the policy, and the migration is refused in its words.
    const pinned = await admin.post('/v1/projects/demo/migrations', migration('m0', { instance: 'web-0' }));
    assert.equal(pinned.status, 422, pinned.text);
    assert.match(pinned.text, /no node to move to: 0\/2 nodes are available: .*1 not the pinned node/);
    assert.equal((await admin.get('/v1/projects/demo/migrations/m0')).status, 404, 'nothing created');

    // Unpinned (the workload's rules: DE or FR), it may go to node-fr.
    const unpin = await admin.post('/v1/apply', {
      documents: [
        workload('demo', 'web', {
          image: 'testvm',
          ports: [{ guest: 80 }],
          placement: { countries: ['DE', 'FR'] },
        }),
      ],
    });
    assert.equal(unpin.status, 200, unpin.text);
    const counted = lastCount(await consoleText());
    // As a user does it: the CLI creates the Migration and follows it to its end.
    const env = { CONTINUUM_SERVER: cp.url, CONTINUUM_TOKEN: cp.adminToken! };
    const cli = await runCli(
      ['-p', 'demo', 'migrate', 'web-0', '--to', 'edge-fr/node-fr', '--name', 'm1', '--wait'],
      env,
    );
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /^migration\/demo\/m1 created\n/);
    assert.match(
      cli.stdout,
      /migrated web-0 edge-de\/node-de → edge-fr\/node-fr \(live, direct\): downtime \d+ ms, total [\d.]+ s/,
    );
    assert.match(cli.stderr, /\[#+-*\]\s+\d+%.*(Preparing|Migrating|Succeeded)/, 'a progress bar');
    const done = (await admin.get('/v1/projects/demo/migrations/m1')).body;
    const listed = await runCli(['-p', 'demo', 'get', 'migrations'], env);
    assert.match(
      listed.stdout,
      /m1\s+web-0\s+edge-de\/node-de\s+edge-fr\/node-fr\s+live\s+\[#+\]\s+100%.*Succeeded\s+\d+ms/,
    );
    assert.equal(done.status.phase, 'Succeeded', JSON.stringify(done.status));
    assert.equal(done.status.from, 'edge-de/node-de');
    assert.equal(done.status.target, 'edge-fr/node-fr');
    assert.equal(done.status.path, 'direct');
    assert.equal(typeof done.status.downtimeMs, 'number');
    assert.equal(typeof done.status.totalTimeMs, 'number');
    assert.ok(done.status.progress.ramTransferred > 0);

    const after = await instance();
    assert.equal(after.spec.node, 'edge-fr/node-fr');
    assert.equal(after.spec.fence, before.spec.fence + 1);
    // The guest carries on: the destination's console continues the count, with no boot.
    await waitFor('counting on node-fr', async () => lastCount(await consoleText()) > counted + 2, 60_000);
    assert.ok(!(await consoleText()).includes('continuum-test-image ready'), 'no second boot');
    // Served by the destination's forwarded port, reported by its agent.
    const served = await waitFor('http on node-fr', async () => {
      const i = await instance();
      const p = i.status.ports?.[0];
      if (i.spec.node !== 'edge-fr/node-fr' || !p) return false;
      return (await fetch(`http://${p.address}:${p.host}/`, { signal: AbortSignal.timeout(3000) })).text();
    });
    assert.match(served, /^hello from web-0 /);
    // The source's copy is gone from node-de.
    const source = new QemuRuntime({ dir: join(dir, 'node-de', 'instances') });
    await waitFor('removed from node-de', async () => (await source.list()).length === 0, 60_000);
    const events = (await admin.get('/v1/events?kind=Instance&limit=500')).body.items as any[];
    assert.ok(events.some((e) => e.action === 'migrate' && e.name === 'web-0'));
    // Its course is in the audit log (and the event stream): each phase once.
    const course = ((await admin.get('/v1/events?kind=Migration&limit=500')).body.items as any[])
      .filter((e) => e.name === 'm1')
      .map((e) => e.action);
    assert.deepEqual(course.slice(0, 2), ['create', 'preparing']);
    assert.equal(course.at(-1), 'succeeded');
    assert.ok(course.includes('migrating'), course.join(' '));
  });

  test('bad migrations are refused with what is wrong, and change nothing', async () => {
    // A node of another provider, in Poland, in the agents' own format (no VM needed).
    await cp.store.transaction((tx) =>
      tx.insert('nodes', {
        uid: newUid(),
        parent: 'edge-pl',
        name: 'node-pl',
        labels: {},
        spec: { site: 'waw' },
        status: { state: 'ready', inventory: simInventory('node-pl') },
        createdBy: 'test',
        columns: { site: 'waw', state: 'ready' },
      }),
    );
    // Two more French nodes, one drained and one down.
    await cp.store.transaction(async (tx) => {
      for (const [name, state, drain] of [
        ['node-fr-drained', 'ready', true],
        ['node-fr-down', 'down', false],
      ] as const)
        await tx.insert('nodes', {
          uid: newUid(),
          parent: 'edge-fr',
          name,
          labels: {},
          spec: { site: 'par', ...(drain ? { drain: true, unschedulable: true } : {}) },
          status: { state, inventory: { ...simInventory(name), liveMigration: true } },
          createdBy: 'test',
          columns: { site: 'par', state },
        });
    });
    const refused = async (name: string, spec: object, pattern: RegExp) => {
      const r = await admin.post('/v1/projects/demo/migrations', migration(name, spec));
      assert.equal(r.status, 422, r.text);
      assert.match(r.text, pattern);
      assert.equal((await admin.get(`/v1/projects/demo/migrations/${name}`)).status, 404, 'nothing created');
    };
    await waitFor('node-pl known to the scheduler', async () => {
      const r = await admin.post(
        '/v1/projects/demo/migrations',
        migration('probe', { instance: 'web-0', to: { node: 'edge-pl/node-pl' } }),
      );
      return r.status === 422 && /country not allowed/.test(r.text);
    });
    await refused(
      'r1',
      { instance: 'web-0', to: { node: 'edge-pl/node-pl' } },
      /0\/1 nodes are available: 1 country not allowed/,
    );
    await refused(
      'r2',
      { instance: 'web-0', to: { node: 'edge-fr/node-fr' } },
      /already runs on node 'edge-fr\/node-fr'/,
    );
    await refused(
      'r3',
      { instance: 'web-0', to: { node: 'edge-fr/nowhere' } },
      /node 'edge-fr\/nowhere' does not exist/,
    );
    await refused('r4', { instance: 'nope-0' }, /instance 'nope-0' not found in project 'demo'/);
    // A pending instance (bound to node-pl, whose agent never runs anything here).
    const pending = await admin.post('/v1/apply', {
      documents: [workload('demo', 'idle', { image: 'testvm', placement: { node: 'edge-pl/node-pl' } })],
    });
    assert.equal(pending.status, 200, pending.text);
    await waitFor(
      'idle-0 bound',
      async () => (await admin.get('/v1/projects/demo/instances/idle-0')).status === 200,
    );
    await refused(
      'r11',
      { instance: 'idle-0' },
      /instance 'idle-0' is not running \(phase Pending\): only a running instance migrates/,
    );
    assert.equal((await admin.del('/v1/projects/demo/workloads/idle')).status, 200);
    await waitFor('the French nodes known to the scheduler', async () => {
      const r = await admin.post(
        '/v1/projects/demo/migrations',
        migration('probe2', { instance: 'web-0', to: { node: 'edge-fr/node-fr-down' } }),
      );
      return r.status === 422 && /node not ready/.test(r.text);
    });
    await refused(
      'r7',
      { instance: 'web-0', to: { node: 'edge-fr/node-fr-drained' } },
      /0\/1 nodes are available: 1 node cordoned or draining/,
    );
    await refused(
      'r8',
      { instance: 'web-0', to: { node: 'edge-fr/node-fr-down' } },
      /0\/1 nodes are available: 1 node not ready/,
    );
    // A node that cannot take a migration (a simulated one, no runtime that moves VMs).
    await refused(
      'r9',
      { instance: 'web-0', to: { provider: 'edge-pl' } },
      /provider 'edge-pl' does not exist or has no node that can receive a migration from edge-fr\/node-fr/,
    );
    await refused(
      'r10',
      { instance: 'web-0', to: { provider: 'edge-pl' }, mode: 'cold' },
      /has no node that can receive a cold migration/,
    );
    await refused(
      'r5',
      { instance: 'web-0', to: { node: 'edge-de/node-de', provider: 'edge-de' } },
      /give one of node, site or provider/,
    );
    assert.equal((await admin.post('/v1/projects/demo/instances/web-0/stop', {})).status, 200);
    await refused(
      'r6',
      { instance: 'web-0' },
      /instance 'web-0' is stopped: only a running instance migrates/,
    );
  });

  test('a migration cancelled before its switch-over leaves the VM where it runs', async () => {
    assert.equal((await admin.post('/v1/projects/demo/instances/web-0/start', {})).status, 200);
    await waitFor(
      'running again on node-fr',
      async () => (await instance()).status?.phase === 'Running',
      120_000,
    );
    const before = await instance();
    const env = { CONTINUUM_SERVER: cp.url, CONTINUUM_TOKEN: cp.adminToken! };
    const doc = migration('mc', { instance: 'web-0', to: { node: 'edge-de/node-de' } });
    assert.equal((await admin.post('/v1/projects/demo/migrations', doc)).status, 201);
    // One migration at a time per instance.
    const second = await admin.post(
      '/v1/projects/demo/migrations',
      migration('mc2', { instance: 'web-0', to: { node: 'edge-de/node-de' } }),
    );
    assert.equal(second.status, 422, second.text);
    assert.match(second.text, /instance 'web-0' is being migrated already \(migration 'mc'\)/);
    assert.equal((await admin.get('/v1/projects/demo/migrations/mc2')).status, 404, 'nothing created');
    // At once, before the destination's copy can have received anything.
    const cancel = await admin.put('/v1/projects/demo/migrations/mc', {
      ...doc,
      spec: { ...doc.spec, cancel: true },
    });
    assert.equal(cancel.status, 200, cancel.text);
    // Its target cannot change once created.
    const moved = await admin.put('/v1/projects/demo/migrations/mc', {
      ...doc,
      spec: { instance: 'web-0', cancel: true },
    });
    assert.equal(moved.status, 422);
    assert.match(moved.text, /cannot change once created/);
    await waitFor(
      'cancelled',
      async () => (await admin.get('/v1/projects/demo/migrations/mc')).body.status.phase === 'Cancelled',
      60_000,
    );
    const m = (await admin.get('/v1/projects/demo/migrations/mc')).body;
    assert.equal(m.status.phase, 'Cancelled');
    const after = await instance();
    assert.equal(after.spec.node, before.spec.node);
    assert.equal(after.spec.fence, before.spec.fence);
    const rt = new QemuRuntime({ dir: join(dir, 'node-de', 'instances') });
    await waitFor('nothing left on node-de', async () => (await rt.list()).length === 0, 60_000);
    const again = await runCli(['-p', 'demo', 'migrate', 'cancel', 'mc'], env);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /migration demo\/mc has ended \(Cancelled\); nothing to cancel/);
  });

  test('the destination dies mid-migration: the VM keeps running on the source, nothing is left on the destination', async () => {
    const before = await instance();
    assert.equal(before.spec.node, 'edge-fr/node-fr');
    const created = await admin.post(
      '/v1/projects/demo/migrations',
      migration('m2', { instance: 'web-0', to: { node: 'edge-de/node-de' } }),
    );
    assert.equal(created.status, 201, created.text);
    // The destination machine goes down as soon as its copy exists: agent and QEMU.
    const destDir = join(dir, 'node-de', 'instances');
    const qemu = await waitFor(
      'the destination copy',
      async () => {
        const pids = pidsMatching(destDir);
        return pids.length > 0 && pids;
      },
      60_000,
    );
    const deAgent = agents[0]!;
    deAgent.child.kill('SIGKILL');
    for (const pid of qemu) process.kill(pid, 'SIGKILL');
    await once(deAgent.child, 'exit');

    const failed = await waitFor(
      'migration failed',
      async () => {
        const m = (await admin.get('/v1/projects/demo/migrations/m2')).body;
        return ['Succeeded', 'Failed', 'Cancelled'].includes(m.status.phase) && m;
      },
      180_000,
    );
    assert.equal(failed.status.phase, 'Failed', JSON.stringify(failed.status));
    assert.match(failed.status.message, /keeps running on edge-fr\/node-fr/);
    const after = await instance();
    assert.equal(after.spec.node, 'edge-fr/node-fr', 'still bound to the source');
    assert.equal(after.spec.fence, before.spec.fence, 'not fenced: nothing moved');
    const counted = lastCount(await consoleText());
    await waitFor(
      'still counting on node-fr',
      async () => lastCount(await consoleText()) > counted + 1,
      60_000,
    );
    const p = after.status.ports[0];
    assert.match(await (await fetch(`http://${p.address}:${p.host}/`)).text(), /^hello from web-0 /);

    // The destination comes back: what was prepared there is removed.
    agents[0] = await startAgentProcess({ dataDir: join(dir, 'node-de') });
    const rt = new QemuRuntime({ dir: destDir });
    await waitFor('nothing left on node-de', async () => (await rt.list()).length === 0, 60_000);
    assert.deepEqual(pidsMatching(destDir), []);
  });

  test('draining a node moves its replica live: the guest goes on, the old copy stops only after the new one runs', async () => {
    await waitFor(
      'node-de ready again',
      async () => {
        const n = (await admin.get('/v1/providers/edge-de/nodes/node-de')).body;
        return n.status?.state === 'ready';
      },
      60_000,
    );
    const before = await instance();
    assert.equal(before.spec.node, 'edge-fr/node-fr');
    const counted = lastCount(await consoleText());
    const drained = await admin.post('/v1/providers/edge-fr/nodes/node-fr/drain', {});
    assert.equal(drained.status, 200, drained.text);
    const moved = await waitFor(
      'moved live to node-de',
      async () => {
        const i = await instance();
        return i.spec.node === 'edge-de/node-de' && i.status.phase === 'Running' && i;
      },
      300_000,
    );
    assert.equal(moved.spec.fence, before.spec.fence + 1);
    // A Migration the workload controller created, not a stop-and-recreate.
    const items = (await admin.get('/v1/projects/demo/migrations')).body.items as any[];
    const live = items.find((m) => m.metadata.createdBy === 'controller:workloads');
    assert.ok(live, JSON.stringify(items.map((m) => [m.metadata.name, m.metadata.createdBy])));
    assert.equal(live.status.phase, 'Succeeded');
    assert.equal(live.status.target, 'edge-de/node-de');
    await waitFor('counting on node-de', async () => lastCount(await consoleText()) > counted + 2, 60_000);
    assert.ok(
      !(await consoleText()).includes('continuum-test-image ready'),
      'no reboot: it was moved, not recreated',
    );
    assert.equal((await admin.post('/v1/providers/edge-fr/nodes/node-fr/uncordon', {})).status, 200);
  });

  test('a policy that no longer holds moves the replica live to a node where it does', async () => {
    const before = await instance();
    assert.equal(before.spec.node, 'edge-de/node-de');
    const counted = lastCount(await consoleText());
    const known = new Set(
      ((await admin.get('/v1/projects/demo/migrations')).body.items as any[]).map((m) => m.metadata.name),
    );
    // Germany is no longer allowed.
    const changed = await admin.post('/v1/apply', {
      documents: [
        workload('demo', 'web', {
          image: 'testvm',
          ports: [{ guest: 80 }],
          placement: { countries: ['FR'] },
        }),
      ],
    });
    assert.equal(changed.status, 200, changed.text);
    await waitFor(
      'moved live to node-fr',
      async () => {
        const i = await instance();
        return i.spec.node === 'edge-fr/node-fr' && i.status.phase === 'Running';
      },
      300_000,
    );
    const items = (await admin.get('/v1/projects/demo/migrations')).body.items as any[];
    const live = items.find((m) => !known.has(m.metadata.name));
    assert.equal(live?.metadata.createdBy, 'controller:workloads');
    assert.equal(live.status.phase, 'Succeeded');
    await waitFor('counting on node-fr', async () => lastCount(await consoleText()) > counted + 2, 60_000);
    assert.ok(!(await consoleText()).includes('continuum-test-image ready'), 'moved, not recreated');
    const w = (await admin.get('/v1/projects/demo/workloads/web')).body;
    assert.equal(w.status.outOfPolicy, undefined);
  });

  test('a drain with --parallel 1 moves one replica at a time', async () => {
    const env = { CONTINUUM_SERVER: cp.url, CONTINUUM_TOKEN: cp.adminToken! };
    // Two replicas on node-fr (Germany allowed again: they may go there).
    const scaled = await admin.post('/v1/apply', {
      documents: [
        workload('demo', 'web', {
          image: 'testvm',
          replicas: 2,
          ports: [{ guest: 80 }],
          placement: { countries: ['DE', 'FR'], node: 'edge-fr/node-fr' },
        }),
      ],
    });
    assert.equal(scaled.status, 200, scaled.text);
    const running = async () =>
      ((await admin.get('/v1/projects/demo/instances')).body.items as any[]).filter(
        (i) => i.spec.desired !== 'absent' && i.status.phase === 'Running',
      );
    await waitFor(
      'two replicas on node-fr',
      async () => {
        const r = await running();
        return r.length === 2 && r.every((i) => i.spec.node === 'edge-fr/node-fr');
      },
      240_000,
    );
    const unpin = await admin.post('/v1/apply', {
      documents: [
        workload('demo', 'web', {
          image: 'testvm',
          replicas: 2,
          ports: [{ guest: 80 }],
          placement: { countries: ['DE', 'FR'] },
        }),
      ],
    });
    assert.equal(unpin.status, 200, unpin.text);
    const known = new Set(
      ((await admin.get('/v1/projects/demo/migrations')).body.items as any[]).map((m) => m.metadata.name),
    );
    const drained = await runCli(['drain', 'edge-fr/node-fr', '--parallel', '1', '--wait'], env);
    assert.equal(drained.code, 0, drained.stderr);
    assert.match(drained.stdout, /drained: 2 replica\(s\) moved/);
    assert.equal((await admin.get('/v1/providers/edge-fr/nodes/node-fr')).body.spec.drainParallel, 1);
    const moves = ((await admin.get('/v1/projects/demo/migrations')).body.items as any[])
      .filter((m) => !known.has(m.metadata.name))
      .sort((a, b) => a.status.startedAt.localeCompare(b.status.startedAt));
    assert.deepEqual(
      moves.map((m) => m.status.phase),
      ['Succeeded', 'Succeeded'],
    );
    assert.ok(
      moves[0].status.finishedAt <= moves[1].status.startedAt,
      `one at a time: ${moves.map((m) => `${m.status.startedAt}–${m.status.finishedAt}`).join(', ')}`,
    );
    assert.equal((await runCli(['uncordon', 'edge-fr/node-fr'], env)).code, 0);
    assert.equal((await admin.get('/v1/providers/edge-fr/nodes/node-fr')).body.spec.drainParallel, undefined);
  });

  test('to a node that takes no live migration the VM moves cold: stopped, copied, started there, and says why', async () => {
    const env = { CONTINUUM_SERVER: cp.url, CONTINUUM_TOKEN: cp.adminToken! };
    await f.startAgent('edge-fr', 'par', 'node-fr2', ['--no-live-migration']);
    await waitFor('node-fr2 ready', async () => {
      const n = (await admin.get('/v1/providers/edge-fr/nodes/node-fr2')).body;
      return n.status?.state === 'ready' && n.status.inventory.liveMigration === false;
    });
    const before = await instance();
    const from = before.spec.node;
    // Live only: refused, with the reason and the way out.
    const live = await runCli(['-p', 'demo', 'migrate', 'web-0', '--to', 'edge-fr/node-fr2', '--live'], env);
    assert.equal(live.code, 1, live.stdout);
    assert.match(
      live.stderr,
      /edge-fr\/node-fr2 cannot receive a live migration from .*: edge-fr\/node-fr2 takes no live migration .*leave out spec\.mode to move it cold/,
    );

    const cli = await runCli(
      ['-p', 'demo', 'migrate', 'web-0', '--to', 'edge-fr/node-fr2', '--name', 'cold1', '--wait'],
      env,
    );
    assert.equal(cli.code, 0, `${cli.stdout}${cli.stderr}`);
    assert.match(
      cli.stdout,
      /migrated web-0 .* → edge-fr\/node-fr2 \(cold, direct; not live: edge-fr\/node-fr2 takes no live migration .*\): stopped, no disk to copy, total [\d.]+ s/,
    );
    const m = (await admin.get('/v1/projects/demo/migrations/cold1')).body;
    assert.equal(m.status.mode, 'cold');
    assert.match(m.status.modeReason, /not live: edge-fr\/node-fr2 takes no live migration/);
    const listed = await runCli(['-p', 'demo', 'get', 'migrations'], env);
    assert.match(listed.stdout, /cold1\s+web-0\s+\S+\s+edge-fr\/node-fr2\s+cold\s+/);

    const after = await instance();
    assert.equal(after.spec.node, 'edge-fr/node-fr2');
    assert.ok(after.spec.fence > before.spec.fence, 'fenced anew');
    // A fresh boot there (cold: the guest's memory did not travel), served on the new node.
    await waitFor('booted on node-fr2', async () => lastCount(await consoleText()) >= 2, 180_000);
    const served = await waitFor('http on node-fr2', async () => {
      const i = await instance();
      const p = i.status.phase === 'Running' && i.status.ports?.[0];
      return (
        p && (await fetch(`http://${p.address}:${p.host}/`, { signal: AbortSignal.timeout(3000) })).text()
      );
    });
    assert.match(served, /^hello from web-0 /);
    // The stopped copy on the source is gone.
    const source = new QemuRuntime({ dir: join(dir, from.split('/')[1], 'instances') });
    // The residency report has each move: the last stay is on node-fr2 in France, migrated there.
    const stays = (await admin.get('/v1/projects/demo/residency?instance=web-0')).body.stays as any[];
    assert.deepEqual(
      [stays.at(-1).country, stays.at(-1).node, stays.at(-1).how, stays.at(-1).to],
      ['FR', 'node-fr2', 'migrated', undefined],
    );
    assert.equal(stays.at(-2).to, stays.at(-1).from, 'it left the source when it came here');
    assert.equal(stays[0].how, 'placed');
    await waitFor(
      'nothing of web-0 left on the source',
      async () => !(await source.list()).includes(before.metadata.uid),
      60_000,
    );
  });
});
