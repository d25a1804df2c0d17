// Live migration between two nodes that cannot reach each other: two real agent
// processes in their own network namespaces (as two hosts behind NAT would be), with a
// route in the source's namespace that refuses the destination's address, both still
// reaching the control plane's gateway on the bridge. The streams go through the
// gateway's relay, the migration says so, and the guest goes on without a reboot.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type ControlPlane, startControlPlane } from '../src/control-plane/index.js';
import { createNetwork, type DevNetwork, destroyNetwork } from '../src/dev/netns.js';
import { CLI, runCli } from './support/cli.js';
import { type Http, http } from './support/control-plane.js';
import { project, provider, site, workload } from './support/fixtures.js';
import { endAgentsAndVms, freePort } from './support/processes.js';
import { lastCount, testImage, uploadTestImage, waitFor } from './support/test-image.js';

const PREFIX = 'ctmrl';

describe('live migration through the relay', () => {
  let dir: string;
  let net: DevNetwork;
  let cp: ControlPlane;
  let admin: Http;
  const children: ReturnType<typeof spawn>[] = [];
  const image = testImage();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'continuum-relay-'));
    net = await createNetwork(PREFIX, '10.239.0.0', 2);
    cp = await startControlPlane({
      listen: `127.0.0.1:${await freePort()}`,
      agentListen: `${net.hostAddress}:${await freePort()}`,
      agentNames: [net.hostAddress],
      dataDir: join(dir, 'cp'),
    });
    admin = http(cp.url, cp.adminToken!);
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
    await uploadTestImage(admin, 'demo', image);
    for (const [i, [p, s, name]] of [
      ['edge-a', 'fra', 'node-a'],
      ['edge-b', 'par', 'node-b'],
    ].entries()) {
      const t = (await admin.post(`/v1/providers/${p}/sites/${s}/join-tokens`, {})).body;
      const args = ['agent', '--server', cp.gatewayUrl!, '--token', t.token, '--name', name!];
      args.push(
        '--data-dir',
        join(dir, name!),
        '--port-bind-address',
        '0.0.0.0',
        '--heartbeat-interval',
        '1000',
      );
      // Each agent's log stays in the test's directory (printed when a test fails).
      const log = openSync(join(dir, `${name}.log`), 'a');
      const child = spawn('ip', ['netns', 'exec', net.hosts[i]!.netns, process.execPath, CLI, ...args], {
        stdio: ['ignore', log, log],
      });
      children.push(child);
    }
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
  });

  after(async () => {
    await endAgentsAndVms(children, dir, ['node-a', 'node-b']);
    await cp.close().catch(() => undefined);
    await destroyNetwork(PREFIX, 2);
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs a test body; when it fails, the agents' logs go with the failure. */
  const withLogs = async (body: () => Promise<void>) => {
    try {
      await body();
    } catch (err) {
      for (const n of ['node-a', 'node-b'])
        console.error(`--- ${n}.log\n${readFileSync(join(dir, `${n}.log`), 'utf8').slice(-20_000)}`);
      throw err;
    }
  };

  const instance = async () => (await admin.get('/v1/projects/demo/instances/web-0')).body;
  const consoleText = async () =>
    (await admin.get('/v1/projects/demo/instances/web-0/console?offset=0&limit=1048576')).body.data as string;

  test('with no direct path between the nodes, the streams go through the relay and the guest goes on', () =>
    withLogs(async () => {
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

      const env = { CONTINUUM_SERVER: cp.url, CONTINUUM_TOKEN: cp.adminToken! };
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
      assert.ok(
        cp.gateway!.stats.relayedBytes > m.status.progress.ramTransferred / 2,
        'the bytes went through the gateway',
      );

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
      const served = await waitFor('http on node-b', async () => {
        const p = (await instance()).status.ports?.[0];
        return (
          p && (await fetch(`http://${p.address}:${p.host}/`, { signal: AbortSignal.timeout(3000) })).text()
        );
      });
      assert.match(served, /^hello from web-0 /);

      // With the way open again, the same guest goes back directly: both paths' figures.
      execFileSync('ip', [
        '-n',
        net.hosts[0]!.netns,
        'route',
        'del',
        'prohibit',
        `${net.hosts[1]!.address}/32`,
      ]);
      const back = await runCli(
        ['-p', 'demo', 'migrate', 'web-0', '--to', 'edge-a/node-a', '--name', 'd1', '--wait'],
        env,
      );
      assert.equal(back.code, 0, `${back.stdout}${back.stderr}`);
      const d = (await admin.get('/v1/projects/demo/migrations/d1')).body;
      assert.equal(d.status.path, 'direct');
      const figures = (x: any) => `downtime ${x.status.downtimeMs} ms, total ${x.status.totalTimeMs} ms`;
      process.stdout.write(`# relay: ${figures(m)}; direct: ${figures(d)}\n`);
    }));
});
