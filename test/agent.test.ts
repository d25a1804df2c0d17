// End to end with real parts: a control plane, a real agent process enrolled over TLS,
// and real QEMU virtual machines (TCG here). Covers enrolment, the VM lifecycle, agent
// restarts (kill -9), a control-plane outage of a minute, and checksum refusal.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type ControlPlane, startControlPlane } from '../src/control-plane/index.js';
import { parseJoinToken } from '../src/protocol/index.js';
import { QemuRuntime } from '../src/runtimes/index.js';
import { runCli, startAgentProcess, type startCli } from './support/cli.js';
import { type Http, http, userWithToken } from './support/control-plane.js';
import { project, provider, site } from './support/fixtures.js';
import { freePort, pidsMatching } from './support/processes.js';
import { testImage, uploadTestImage, waitFor } from './support/test-image.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('agent with real virtual machines', () => {
  let dir: string;
  let cp: ControlPlane;
  let admin: Http;
  let cpOpts: Parameters<typeof startControlPlane>[0];
  let gateway: string;
  let agentDir: string;
  let agent: Awaited<ReturnType<typeof startCli>> | undefined;
  const image = testImage();

  const startAgent = async (extra: string[] = []) => {
    agent = await startAgentProcess({ dataDir: agentDir, extra });
    return agent;
  };
  const killAgent = async () => {
    if (!agent) return;
    const a = agent;
    agent = undefined;
    if (a.child.exitCode === null && a.child.signalCode === null) {
      a.child.kill('SIGKILL');
      await once(a.child, 'exit');
    }
  };
  const instance = async (name = 'web-0') => (await admin.get(`/v1/projects/demo/instances/${name}`)).body;
  const serve = async (i: any, path = '/') => {
    const p = i.status.ports[0];
    return (
      await fetch(`http://${p.address}:${p.host}${path}`, { signal: AbortSignal.timeout(3000) })
    ).text();
  };
  const consoleText = async (name = 'web-0') => {
    let text = '';
    let offset = 0;
    for (;;) {
      const r = await admin.get(`/v1/projects/demo/instances/${name}/console?offset=${offset}&limit=1048576`);
      if (r.status !== 200) throw new Error(r.text);
      text += r.body.data;
      if (r.body.next === offset) return text;
      offset = r.body.next;
    }
  };
  const qemuOf = (uid: string) => pidsMatching(join(agentDir, 'instances', uid));

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'continuum-e2e-'));
    agentDir = join(dir, 'agent');
    cpOpts = {
      listen: `127.0.0.1:${await freePort()}`,
      agentListen: `127.0.0.1:${await freePort()}`,
      dataDir: join(dir, 'cp'),
    };
    cp = await startControlPlane(cpOpts);
    gateway = cp.gatewayUrl!;
    admin = http(cp.url, cp.adminToken!);
    const setup = await admin.post('/v1/apply', {
      documents: [provider('edge-a'), site('edge-a', 'site-1'), project('demo')],
    });
    assert.equal(setup.status, 200, setup.text);
    await uploadTestImage(admin, 'demo', image);
  });

  after(async () => {
    await killAgent();
    const rt = new QemuRuntime({ dir: join(agentDir, 'instances') });
    for (const id of await rt.list()) await rt.delete(id);
    await cp.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  test('enrolment: a valid token works once; expired, used-up, forged and wrongly pinned tokens fail clearly', async () => {
    const token = async (body: object) =>
      (await admin.post('/v1/providers/edge-a/sites/site-1/join-tokens', body)).body;
    const good = await token({ maxUses: 1, description: 'node-1' });
    assert.match(good.command, new RegExp(`^continuum agent --server ${gateway} --token ctj_`));
    const enrol = (t: string, d = join(dir, `try-${Math.random()}`)) =>
      runCli(['agent', '--server', gateway, '--token', t, '--data-dir', d, '--name', 'probe']);

    // The secret may itself hold '_' (base64url): forge it from the parsed parts, not by
    // a pattern that could match across the id.
    const parts = parseJoinToken(good.token)!;
    const forged = `ctj_${parts.id}_${'B'.repeat(43)}_${parts.caFingerprint}`;
    const r1 = await enrol(forged);
    assert.equal(r1.code, 1);
    assert.match(r1.stderr, /enrolment refused: the join token is not valid \(unknown, revoked or forged\)/);

    const badPin = good.token.replace(/_[0-9a-f]{64}$/, `_${'0'.repeat(64)}`);
    const r2 = await enrol(badPin);
    assert.match(r2.stderr, /does not match the join token's pin/);

    const expired = await token({ expiresInHours: 0.0001 });
    await new Promise((r) => setTimeout(r, 600));
    const r3 = await enrol(expired.token);
    assert.match(r3.stderr, /the join token expired at/);

    const a = await startAgent(['--server', gateway, '--token', good.token, '--name', 'node-1']);
    assert.equal(a.match[1], 'edge-a/node-1');
    const again = await enrol(good.token);
    assert.match(again.stderr, /the join token has been used up \(1 of 1 uses\)/);

    const node = await waitFor('node ready', async () => {
      const n = (await admin.get('/v1/providers/edge-a/nodes/node-1')).body;
      return n.status?.state === 'ready' && n;
    });
    assert.equal(node.status.state, 'ready');
    assert.equal(node.spec.site, 'site-1');
    assert.equal(node.status.inventory.virtualization, 'emulation');
    assert.ok(node.status.inventory.cpus >= 1 && node.status.inventory.memoryMiB > 0);
    assert.equal(
      (await admin.get('/v1/providers/edge-a/nodes/probe')).status,
      404,
      'failed enrolments register nothing',
    );
  });

  test('a workload pinned to the node boots a real VM: HTTP, console, stop, start, reboot', async () => {
    const apply = await admin.post('/v1/apply', {
      documents: [
        {
          kind: 'Workload',
          metadata: { name: 'web', project: 'demo' },
          spec: {
            kind: 'vm',
            image: 'testvm',
            replicas: 1,
            resources: { vcpus: 1, memoryMiB: 256 },
            ports: [{ guest: 80 }],
            userData: '#!/bin/sh\necho configured by cloud-init\n',
            placement: { node: 'edge-a/node-1' },
          },
        },
      ],
    });
    assert.equal(apply.status, 200, apply.text);
    const running = await waitFor('instance running', async () => {
      const i = await instance();
      return i.status?.phase === 'Running' && i.status.ports.length && i;
    });
    assert.equal(running.spec.node, 'edge-a/node-1');
    assert.equal(await waitFor('http', () => serve(running)), `hello from web-0 (${running.metadata.uid})\n`);
    assert.equal(await serve(running, '/user-data.out'), 'configured by cloud-init\n');
    await waitFor('console', async () => (await consoleText()).includes('continuum-counter 2'));
    const logs = await runCli(['--server', cp.url, '--token', cp.adminToken!, '-p', 'demo', 'logs', 'web-0']);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /continuum-test-image ready hostname=web-0/);
    const wl = await waitFor('workload status', async () => {
      const w = (await admin.get('/v1/projects/demo/workloads/web')).body;
      return w.status.readyReplicas === 1 && w;
    });
    assert.equal(wl.status.phase, 'Running');

    assert.equal((await admin.post('/v1/projects/demo/instances/web-0/stop', {})).status, 200);
    await waitFor('stopped', async () => (await instance()).status.phase === 'Stopped');
    await assert.rejects(serve(running));
    assert.equal((await admin.post('/v1/projects/demo/instances/web-0/start', {})).status, 200);
    const restarted = await waitFor('started', async () => {
      const i = await instance();
      return i.status.phase === 'Running' && i.status.ports.length && i;
    });
    await waitFor('http after start', () => serve(restarted));
    const boots = (await consoleText()).split('continuum-test-image ready').length;
    assert.equal((await admin.post('/v1/projects/demo/instances/web-0/reboot', {})).status, 200);
    await waitFor(
      'rebooted',
      async () => (await consoleText()).split('continuum-test-image ready').length > boots,
    );
  });

  test("a provider-admin reads a VM's console and user data only while the project grants it", async () => {
    const opsToken = await userWithToken(admin, 'edge-a-ops', [
      { role: 'provider-admin', provider: 'edge-a' },
    ]);
    const padmin = http(cp.url, opsToken);
    const tenant = http(
      cp.url,
      await userWithToken(admin, 'demo-owner', [{ role: 'project-admin', project: 'demo' }]),
    );
    const grant = async (providerAccess?: object) => {
      const r = await tenant.put('/v1/projects/demo', {
        ...project('demo'),
        spec: { displayName: 'demo', ...(providerAccess ? { providerAccess } : {}) },
      });
      assert.equal(r.status, 200, r.text);
    };
    const consoleOf = () => padmin.get('/v1/projects/demo/instances/web-0/console?limit=1048576');

    // Which instances run on its node and what they use: yes. Console and user data: no.
    const onNode = (await padmin.get('/v1/instances?node=edge-a/node-1')).body.items;
    assert.deepEqual(
      onNode.map((i: any) => [i.metadata.name, i.status.phase, i.spec.vcpus, i.spec.memoryMiB]),
      [['web-0', 'Running', 1, 256]],
    );
    assert.equal(onNode[0].spec.userData, undefined);
    const refused = await consoleOf();
    assert.equal(refused.status, 403, refused.text);
    assert.match(refused.body.error.message, /does not grant its providers console access/);
    const logs = await runCli(['--server', cp.url, '--token', opsToken, '-p', 'demo', 'logs', 'web-0']);
    assert.notEqual(logs.code, 0);
    assert.match(logs.stderr, /providerAccess\.console/);
    const events = await padmin.get('/v1/events?limit=1000');
    assert.ok(events.body.items.some((e: any) => e.kind === 'Instance' && e.name === 'web-0'));
    assert.ok(!events.text.includes('configured by cloud-init'), 'the audit log shows user data');

    await grant({ console: true, userData: true });
    const granted = await consoleOf();
    assert.equal(granted.status, 200, granted.text);
    assert.match(granted.body.data, /continuum-test-image ready hostname=web-0/);
    const withData = (await padmin.get('/v1/projects/demo/instances/web-0')).body;
    assert.equal(withData.spec.userData, '#!/bin/sh\necho configured by cloud-init\n');

    await grant(undefined);
    assert.equal((await consoleOf()).status, 403);
  });

  test('the agent killed with kill -9 and restarted adopts its running VM', async () => {
    const before = await instance();
    const [pid] = qemuOf(before.metadata.uid);
    assert.ok(pid, 'QEMU runs');
    await killAgent();
    assert.equal(
      await serve(before),
      `hello from web-0 (${before.metadata.uid})\n`,
      'the VM outlives its agent',
    );
    await startAgent();
    await waitFor('reconnected', async () => cp.gateway!.isConnected('edge-a', 'node-1'));
    await new Promise((r) => setTimeout(r, 3000));
    assert.deepEqual(qemuOf(before.metadata.uid), [pid], 'the same QEMU, no second copy');
    assert.equal((await instance()).status.phase, 'Running');
    assert.equal((await instance()).status.restarts, 0);
  });

  test('with the control plane down for a minute the VM keeps running, a crash is healed, and state converges', async () => {
    const i = await instance();
    const [pid] = qemuOf(i.metadata.uid);
    const down = Date.now();
    await cp.close();
    assert.equal(await serve(i), `hello from web-0 (${i.metadata.uid})\n`);
    process.kill(pid!, 'SIGKILL');
    // The new QEMU once it has daemonized: the only one of the VM, and the one in its pidfile
    // (its short-lived parent also shows the VM's directory in its command line).
    const newPid = await waitFor('restarted while offline', async () => {
      const p = qemuOf(i.metadata.uid);
      const file = join(agentDir, 'instances', i.metadata.uid, 'qemu.pid');
      const daemon = existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : undefined;
      return p.length === 1 && p[0] !== pid && p[0] === daemon && daemon;
    });
    await waitFor('serving again while offline', async () => {
      const now = JSON.parse(readFileSync(join(agentDir, 'instances', i.metadata.uid, 'meta.json'), 'utf8'));
      const port = now.ports[0].host;
      return (await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(3000) })).ok;
    });
    const left = 60_000 - (Date.now() - down);
    if (left > 0) await new Promise((r) => setTimeout(r, left));
    assert.deepEqual(qemuOf(i.metadata.uid), [newPid], 'still running, still one copy');

    cp = await startControlPlane(cpOpts);
    admin = http(
      cp.url,
      (await import('node:fs')).readFileSync(join(cpOpts.dataDir, 'admin-token'), 'utf8').trim(),
    );
    const back = await waitFor(
      'converged',
      async () => {
        const x = await instance();
        return x.status.phase === 'Running' && x.status.restarts === 1 && x;
      },
      90_000,
    );
    assert.equal(await serve(back), `hello from web-0 (${i.metadata.uid})\n`);
    assert.deepEqual(qemuOf(i.metadata.uid), [newPid]);
    assert.equal(
      (await admin.get('/v1/projects/demo/instances')).body.items.length,
      1,
      'no duplicate instance',
    );
  });

  test('an image file that fails its checksum on the node is refused', async () => {
    const kernel = Buffer.concat([readFileSync(image.kernel), Buffer.from('tampered-variant')]);
    const initrd = readFileSync(image.initrd);
    await admin.post('/v1/projects/demo/images', {
      metadata: { name: 'tampered' },
      spec: {
        format: 'kernel-initrd',
        files: { kernel: { sha256: sha(kernel) }, initrd: { sha256: sha(initrd) } },
      },
    });
    await admin.put('/v1/projects/demo/images/tampered/files/kernel', kernel);
    await admin.put('/v1/projects/demo/images/tampered/files/initrd', initrd);
    // Corrupt the stored copy behind the control plane's back, as a bad disk would.
    writeFileSync(join(cpOpts.dataDir, 'images', 'sha256', sha(kernel)), Buffer.from('garbage'));
    await admin.post('/v1/projects/demo/workloads', {
      metadata: { name: 'bad' },
      spec: {
        kind: 'vm',
        image: 'tampered',
        replicas: 1,
        resources: { vcpus: 1, memoryMiB: 128 },
        placement: { node: 'edge-a/node-1' },
      },
    });
    const failed = await waitFor('refused', async () => {
      const x = await instance('bad-0');
      return x.status?.phase === 'Failed' && x;
    });
    assert.match(
      failed.status.message,
      /failed verification: expected sha256 [0-9a-f]{64}, got [0-9a-f]{64}/,
    );
    assert.deepEqual(qemuOf(failed.metadata.uid), [], 'nothing was booted');
  });

  test('deleting workloads removes their VMs from the node', async () => {
    const uid = (await instance()).metadata.uid;
    assert.equal((await admin.del('/v1/projects/demo/workloads/web')).status, 200);
    assert.equal((await admin.del('/v1/projects/demo/workloads/bad')).status, 200);
    await waitFor(
      'instances gone',
      async () => (await admin.get('/v1/projects/demo/instances')).body.items.length === 0,
    );
    assert.deepEqual(qemuOf(uid), []);
    assert.deepEqual(await new QemuRuntime({ dir: join(agentDir, 'instances') }).list(), []);
  });

  test("revoking a node's credentials disconnects its agent and keeps it out", async () => {
    assert.ok(cp.gateway!.isConnected('edge-a', 'node-1'));
    const r = await admin.post('/v1/providers/edge-a/nodes/node-1/revoke', {});
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.revoked, 1);
    await waitFor('disconnected', async () => !cp.gateway!.isConnected('edge-a', 'node-1'));
    await new Promise((res) => setTimeout(res, 3000));
    assert.ok(!cp.gateway!.isConnected('edge-a', 'node-1'), 'reconnection attempts are refused');
    assert.match(agent!.output(), /control plane refused the connection: HTTP 401/);
  });
});
