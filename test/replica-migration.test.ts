// Live migration when the control plane runs as replicas (issue: high availability): three
// replicas on one PostgreSQL database, a leading; two real agents in network namespaces
// of their own, the source connected to replica b and the destination to replica c, and
// no direct path between them. The leader's migration controller asks both through the
// replicas holding them; the destination fetches the image from c (granted there by the
// leader); the source's progress reaches the leader through b's notes; both sides of the
// relay meet at c, the destination's replica. The guest goes on without a reboot. An
// export asked of a then receives a disk from node-b through c's relay.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type ControlPlane, startControlPlane } from '../src/control-plane/index.js';
import { createNetwork, destroyNetwork, freeSubnet } from '../src/dev/netns.js';
import type { AuditEvent } from '../src/store/index.js';
import { CLI, runCli } from './support/cli.js';
import { http } from './support/control-plane.js';
import { testDatabase } from './support/engines.js';
import { project, provider, site, workload } from './support/fixtures.js';
import { endAgentsAndVms, freePort } from './support/processes.js';
import { lastCount, testImage, uploadTestImage, waitFor } from './support/test-image.js';

const PREFIX = 'ctrmig';

test('a VM moves live between nodes held by two other replicas, through the relay of the destination’s', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'continuum-replica-migration-'));
  const db = await testDatabase('postgres');
  const net = await createNetwork(PREFIX, await freeSubnet('10.236.0.0'), 2);
  const cps = new Map<string, ControlPlane>();
  const children: ReturnType<typeof spawn>[] = [];
  const names = ['node-a', 'node-b'];
  const image = testImage();
  try {
    for (const name of ['a', 'b', 'c'])
      cps.set(
        name,
        await startControlPlane({
          listen: `127.0.0.1:${await freePort()}`,
          agentListen: `${net.hostAddress}:${await freePort()}`,
          agentNames: [net.hostAddress],
          dataDir: join(dir, `cp-${name}`),
          databaseUrl: db.databaseUrl,
          databaseSchema: db.databaseSchema,
          replicaName: name,
          caKeyFile: join(dir, 'cp-a', 'ca.key'),
          logLevel: 'silent',
        }),
      );
    const cp = (name: string) => cps.get(name)!;
    const token = cp('a').adminToken!;
    assert.ok(cp('a').leadership.leading, 'the first replica leads');
    const admin = http(cp('b').url, token);
    const setup = await admin.post('/v1/apply', {
      documents: [
        provider('edge-a'),
        site('edge-a', 'fra'),
        provider('edge-b', { headquarters: 'FR' }),
        site('edge-b', 'par', { country: 'FR', location: { latitude: 48.85, longitude: 2.35 } }),
        project('demo'),
      ],
    });
    assert.equal(setup.status, 200, setup.text);
    // Uploaded through a: its content is in the database, for c to serve.
    await uploadTestImage(http(cp('a').url, token), 'demo', image);
    // node-a's agent is held by b, node-b's by c (each lists every replica, its own first).
    const servers = { 'node-a': ['b', 'c', 'a'], 'node-b': ['c', 'a', 'b'] } as const;
    for (const [i, [p, s, name]] of [
      ['edge-a', 'fra', 'node-a'],
      ['edge-b', 'par', 'node-b'],
    ].entries()) {
      const t = (await admin.post(`/v1/providers/${p}/sites/${s}/join-tokens`, {})).body;
      const list = servers[name as keyof typeof servers].map((r) => cp(r).gatewayUrl!).join(',');
      const args = ['agent', '--server', list, '--token', t.token, '--name', name!];
      args.push('--data-dir', join(dir, name!), '--port-bind-address', '0.0.0.0');
      args.push('--heartbeat-interval', '1000');
      const log = openSync(join(dir, `${name}.log`), 'a');
      children.push(
        spawn('ip', ['netns', 'exec', net.hosts[i]!.netns, process.execPath, CLI, ...args], {
          stdio: ['ignore', log, log],
        }),
      );
    }
    await waitFor('b holds node-a, c holds node-b', async () => {
      return cp('b').gateway!.holds('edge-a', 'node-a') && cp('c').gateway!.holds('edge-b', 'node-b');
    });
    await waitFor('both nodes ready', async () => {
      const nodes = (await admin.get('/v1/nodes')).body.items as any[];
      return nodes.length === 2 && nodes.every((n) => n.status.state === 'ready');
    });
    // The source cannot reach the destination: its packets to it are refused.
    execFileSync('ip', [
      '-n',
      net.hosts[0]!.netns,
      'route',
      'add',
      'prohibit',
      `${net.hosts[1]!.address}/32`,
    ]);

    const instance = async () => (await admin.get('/v1/projects/demo/instances/web-0')).body;
    const consoleText = async () =>
      (await admin.get('/v1/projects/demo/instances/web-0/console?offset=0&limit=1048576')).body
        .data as string;
    const doc = (placement: object) =>
      workload('demo', 'web', { image: 'testvm', ports: [{ guest: 80 }], placement });
    assert.equal(
      (await admin.post('/v1/apply', { documents: [doc({ node: 'edge-a/node-a' })] })).status,
      200,
    );
    await waitFor('running on node-a', async () => (await instance()).status?.phase === 'Running', 180_000);
    await waitFor('counting', async () => lastCount(await consoleText()) >= 3, 120_000);
    assert.equal(
      (await admin.post('/v1/apply', { documents: [doc({ countries: ['DE', 'FR'] })] })).status,
      200,
    );
    const counted = lastCount(await consoleText());
    const images = join(dir, 'node-b', 'images', 'sha256');
    const cached = () =>
      existsSync(images) ? readdirSync(images).filter((f) => /^[0-9a-f]{64}$/.test(f)) : [];
    assert.deepEqual(cached(), [], 'node-b has no image yet');

    // Asked of c; the controller that runs it is a's.
    const env = { CONTINUUM_SERVER: cp('c').url, CONTINUUM_TOKEN: token };
    const cli = await runCli(
      ['-p', 'demo', 'migrate', 'web-0', '--to', 'edge-b/node-b', '--name', 'r1', '--wait'],
      env,
    );
    assert.equal(cli.code, 0, `${cli.stdout}${cli.stderr}`);
    assert.match(
      cli.stdout,
      /migrated web-0 edge-a\/node-a → edge-b\/node-b \(live, relay\): downtime \d+ ms/,
    );
    const m = (await admin.get('/v1/projects/demo/migrations/r1')).body;
    assert.equal(m.status.path, 'relay');
    assert.ok(m.status.progress.ramTransferred > 0, 'the source’s final figures reached the leader');
    // Both sides met at c's relay; neither a nor b carried a byte.
    assert.ok(cp('c').gateway!.stats.relayedBytes > m.status.progress.ramTransferred / 2, 'relayed by c');
    assert.equal(cp('a').gateway!.stats.relayedBytes, 0);
    assert.equal(cp('b').gateway!.stats.relayedBytes, 0);
    // The source's progress on the way (reported to b) moved the migration's phase on a.
    const phases = ((await admin.get('/v1/events?kind=Migration&limit=100')).body.items as AuditEvent[])
      .filter((e) => e.name === 'r1')
      .map((e) => e.action);
    assert.ok(
      phases.includes('mirroring') || phases.includes('migrating'),
      `progress while it streamed: ${phases.join(', ')}`,
    );

    assert.ok(cached().length > 0, 'node-b fetched the image (from c, granted there by a)');
    assert.equal((await instance()).spec.node, 'edge-b/node-b');
    const next = await waitFor(
      'counting on node-b',
      async () => {
        const text = await consoleText().catch(() => '');
        return lastCount(text) > counted + 2 && text;
      },
      60_000,
    );
    assert.ok(
      !next.includes('continuum-test-image ready'),
      `no second boot; node-b's console:\n${next.slice(-3000)}`,
    );

    // An export asked of a takes the disk of a VM on node-b through c's relay.
    const raw = join(dir, 'data.raw');
    execFileSync('qemu-img', ['create', '-q', '-f', 'raw', raw, '16M']);
    execFileSync('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 0 1M', raw]);
    const envA = { CONTINUUM_SERVER: cp('a').url, CONTINUUM_TOKEN: token, HOME: dir };
    const up = await runCli(['-p', 'demo', 'image', 'upload', 'data', '--disk', raw], envA);
    assert.equal(up.code, 0, up.stderr);
    const dbWorkload = workload('demo', 'db', { image: 'data', placement: { node: 'edge-b/node-b' } });
    assert.equal((await admin.post('/v1/apply', { documents: [dbWorkload] })).status, 200);
    await waitFor(
      'db-0 running on node-b',
      async () => (await admin.get('/v1/projects/demo/instances/db-0')).body.status?.phase === 'Running',
      120_000,
    );
    const relayedBefore = cp('c').gateway!.stats.relayedBytes;
    const bundle = join(dir, 'demo.tar');
    const out = await runCli(['export', 'project', 'demo', '-o', bundle], envA);
    assert.equal(out.code, 0, out.stderr);
    const x = join(dir, 'x');
    mkdirSync(x);
    execFileSync('tar', ['xf', bundle], { cwd: x });
    const root = join(x, 'continuum-export-demo');
    const sums = execFileSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: root, encoding: 'utf8' });
    assert.match(sums, /disks\/db-0\.qcow2: OK/);
    const read = execFileSync(
      'qemu-io',
      ['-r', '-f', 'qcow2', '-c', 'read -P 0x5a 0 1M', join(root, 'disks', 'db-0.qcow2')],
      { encoding: 'utf8' },
    );
    assert.match(read, /read 1048576\/1048576 bytes/);
    assert.doesNotMatch(read, /verification failed/, 'the disk holds what the VM was given');
    assert.ok(cp('c').gateway!.stats.relayedBytes > relayedBefore, 'the disk came through c');
  } catch (err) {
    for (const n of names) {
      const log = (() => {
        try {
          return readFileSync(join(dir, `${n}.log`), 'utf8');
        } catch {
          return '';
        }
      })();
      console.error(`--- ${n}.log\n${log.slice(-20_000)}`);
    }
    throw err;
  } finally {
    await endAgentsAndVms(children, dir, names);
    for (const c of cps.values()) await c.close().catch(() => undefined);
    await destroyNetwork(PREFIX, 2);
    await db.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});
