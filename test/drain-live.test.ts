// Draining a whole provider with real agents and real VMs (TCG): three replicas of a web
// workload spread over two providers, a third provider with room. `continuum drain
// provider --wait` moves every replica of the drained provider live; meanwhile the test
// polls the workload's HTTP service on every replica's reported address, and the
// service never stops answering. Afterwards every replica runs elsewhere, none rebooted
// (each guest's console counter went on), each bound anew with a higher fence.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { QemuRuntime } from '../src/runtimes/index.js';
import { runCli } from './support/cli.js';
import type { Http } from './support/control-plane.js';
import { project, provider, site, workload } from './support/fixtures.js';
import { lastCount, waitFor } from './support/test-image.js';
import { startVmFederation, type VmFederation } from './support/vm-federation.js';

const NODES = [
  ['p-de', 'fra', 'node-de'],
  ['p-fr', 'par', 'node-fr'],
  ['p-nl', 'ams', 'node-nl'],
] as const;

describe('draining a provider with live migration', () => {
  let f: VmFederation;
  let admin: Http;

  const replicas = async () =>
    ((await admin.get('/v1/projects/demo/instances')).body.items as any[])
      .filter((i) => i.spec.desired !== 'absent')
      .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  const consoleOf = async (name: string) =>
    (await admin.get(`/v1/projects/demo/instances/${name}/console?offset=0&limit=1048576`)).body
      .data as string;

  before(async () => {
    f = await startVmFederation(
      'drain-live',
      [
        provider('p-de'),
        site('p-de', 'fra'),
        provider('p-fr', { headquarters: 'FR' }),
        site('p-fr', 'par', { country: 'FR', location: { latitude: 48.85, longitude: 2.35 } }),
        provider('p-nl', { headquarters: 'NL' }),
        site('p-nl', 'ams', { country: 'NL', location: { latitude: 52.37, longitude: 4.9 } }),
        project('demo'),
      ],
      'demo',
    );
    admin = f.admin;
    // Two providers at first: the three replicas spread over them.
    await f.startAgent(...NODES[0]);
    await f.startAgent(...NODES[1]);
  });

  after(async () => f.close());

  test('every replica of the drained provider moves live while the service keeps answering', async () => {
    await waitFor('both nodes ready', async () => {
      const nodes = (await admin.get('/v1/nodes')).body.items as any[];
      return nodes.length === 2 && nodes.every((n) => n.status?.state === 'ready');
    });
    const applied = await admin.post('/v1/apply', {
      documents: [
        workload('demo', 'web', {
          image: 'testvm',
          replicas: 3,
          ports: [{ guest: 80 }],
          placement: { spread: { across: 'provider', mode: 'hard' } },
        }),
      ],
    });
    assert.equal(applied.status, 200, applied.text);
    const placed = await waitFor(
      'three replicas running over two providers',
      async () => {
        const r = await replicas();
        return r.length === 3 && r.every((i) => i.status.phase === 'Running') && r;
      },
      300_000,
    );
    await waitFor(
      'every guest counting',
      async () => {
        for (const i of placed) if (lastCount(await consoleOf(i.metadata.name)) < 2) return false;
        return true;
      },
      180_000,
    );
    const byProvider = new Map<string, any[]>();
    for (const i of placed) {
      const p = i.spec.node.split('/')[0];
      byProvider.set(p, [...(byProvider.get(p) ?? []), i]);
    }
    assert.equal(byProvider.size, 2, `spread over two providers: ${placed.map((i) => i.spec.node)}`);
    // The provider with two of them is drained; the third provider has room.
    const [drained, moving] = [...byProvider].sort((a, b) => b[1].length - a[1].length)[0]!;
    assert.equal(moving.length, 2);
    await f.startAgent(...NODES[2]);
    await waitFor('node-nl ready', async () => {
      const n = (await admin.get('/v1/providers/p-nl/nodes/node-nl')).body;
      return n.status?.state === 'ready';
    });
    const counted = new Map<string, number>();
    for (const i of moving) counted.set(i.metadata.name, lastCount(await consoleOf(i.metadata.name)));

    // The service, polled on every replica's reported address until the drain ends.
    let draining = true;
    const rounds: { answered: string[] }[] = [];
    const poll = (async () => {
      while (draining) {
        const answered: string[] = [];
        await Promise.all(
          (await replicas()).map(async (i) => {
            const p = i.status.ports?.[0];
            if (!p) return;
            const text = await fetch(`http://${p.address}:${p.host}/`, { signal: AbortSignal.timeout(2000) })
              .then((r) => r.text())
              .catch(() => '');
            if (text.startsWith(`hello from ${i.metadata.name} `)) answered.push(i.metadata.name);
          }),
        );
        rounds.push({ answered });
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    const env = { CONTINUUM_SERVER: f.cp.url, CONTINUUM_TOKEN: f.cp.adminToken! };
    const cli = await runCli(['drain', 'provider', drained, '--wait'], env).finally(() => {
      draining = false;
    });
    await poll;
    assert.equal(cli.code, 0, `${cli.stdout}${cli.stderr}`);
    assert.match(cli.stdout, /drained: 2 replica\(s\) moved/);
    assert.ok(rounds.length >= 3, `polled during the drain (${rounds.length} rounds)`);
    const answeredBy = (name: string) => rounds.filter((r) => r.answered.includes(name)).length;
    process.stdout.write(
      `# ${rounds.length} rounds polled during the drain; answered by ${placed
        .map((i) => `${i.metadata.name} ${answeredBy(i.metadata.name)}`)
        .join(', ')}\n`,
    );
    const silent = rounds.filter((r) => r.answered.length === 0).length;
    assert.equal(silent, 0, `the service answered in every round (${rounds.length} rounds)`);

    // Everything runs off the drained provider now, moved live: no second boot.
    const now = await replicas();
    assert.equal(now.length, 3);
    for (const i of now) {
      assert.notEqual(i.spec.node.split('/')[0], drained, `${i.metadata.name} left ${drained}`);
      assert.equal(i.status.phase, 'Running');
    }
    for (const i of moving) {
      const after = now.find((n) => n.metadata.name === i.metadata.name)!;
      assert.ok(after.spec.fence > i.spec.fence, `${i.metadata.name} fenced anew`);
      const text = await waitFor(
        `${i.metadata.name} counting on ${after.spec.node}`,
        async () => {
          const t = await consoleOf(i.metadata.name).catch(() => '');
          return lastCount(t) > counted.get(i.metadata.name)! + 1 && t;
        },
        60_000,
      );
      assert.ok(!text.includes('continuum-test-image ready'), `${i.metadata.name} did not boot again`);
    }
    const migrations = (await admin.get('/v1/projects/demo/migrations')).body.items as any[];
    assert.deepEqual(
      migrations.map((m) => `${m.status.phase} ${m.status.mode}`),
      ['Succeeded live', 'Succeeded live'],
    );
    // Nothing of the moved replicas is left on the drained provider's node.
    const node = NODES.find(([p]) => p === drained)![2];
    const rt = new QemuRuntime({ dir: join(f.dir, node, 'instances') });
    await waitFor('the drained node empty', async () => (await rt.list()).length === 0, 60_000);
  });
});
