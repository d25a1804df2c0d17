// Fuzzing the agent gateway: generated messages of every agent message type — valid
// ones, ones with random values in their fields, and random JSON — from one enrolled
// node, while another node runs a workload. Whatever is sent: the transport thread never
// restarts, the control plane stays healthy, and the other node's state never changes.
// CONTINUUM_FUZZ_RUNS sets the number of messages (10,000 in the long mode; fewer in CI).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { WebSocket } from 'ws';
import { fetchPinnedCa, pinnedTls } from '../src/agent/tls.js';
import { startControlPlane } from '../src/control-plane/index.js';
import { AGENT_CONNECT_PATH, PROTOCOL_VERSION, parseJoinToken } from '../src/protocol/index.js';
import { simInventory } from '../src/sim/index.js';
import { http } from './support/control-plane.js';
import { helloMessage, postEnrolment } from './support/crafted-agent.js';
import { project, provider, site, workload } from './support/fixtures.js';

const RUNS = Number(process.env.CONTINUUM_FUZZ_RUNS ?? 600);

const inventory = fc.record({
  hostname: fc.string({ maxLength: 300 }),
  architecture: fc.constantFrom('x86_64', 'aarch64', 'riscv64', 'sparc'),
  cpus: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer(), fc.double()),
  memoryMiB: fc.oneof(fc.integer({ min: 1, max: 65536 }), fc.integer()),
  diskGiB: fc.integer({ min: -5, max: 2_000_000 }),
  virtualization: fc.constantFrom('kvm', 'emulation', 'xen'),
  cpuSecurity: fc.array(fc.constantFrom('sev-snp', 'tdx', 'sgx'), { maxLength: 3 }),
  accelerators: fc.array(
    fc.record({ vendor: fc.string(), model: fc.string(), count: fc.integer({ min: -1, max: 100 }) }),
    { maxLength: 3 },
  ),
});
const observed = fc.record({
  uid: fc.oneof(fc.uuid(), fc.string({ maxLength: 70 })),
  revision: fc.oneof(fc.nat(), fc.integer()),
  phase: fc.constantFrom('Running', 'Stopped', 'Failed', 'Absent', 'Deleting', 'Exploded'),
  ports: fc.array(
    fc.record({ guest: fc.integer(), protocol: fc.constantFrom('tcp', 'udp'), host: fc.integer() }),
    {
      maxLength: 3,
    },
  ),
  restarts: fc.integer(),
  message: fc.string({ maxLength: 5000 }),
});
const metrics = fc.record({
  cpuPercent: fc.double(),
  memoryUsedMiB: fc.double(),
  memoryTotalMiB: fc.double(),
  load1: fc.double(),
  load5: fc.double(),
  load15: fc.double(),
});
/** One message as text: every type of the protocol, with fields fair and foul, or any JSON at all. */
const message = fc
  .oneof(
    fc.record({ type: fc.constant('heartbeat'), metrics, usage: fc.constant([]) }),
    fc.record({
      type: fc.constant('observed'),
      instances: fc.array(observed, { maxLength: 4 }),
      seq: fc.integer(),
    }),
    fc.record({ type: fc.constant('probes'), rttMs: fc.dictionary(fc.string(), fc.double()) }),
    fc.record({
      type: fc.constant('reply'),
      id: fc.integer(),
      ok: fc.boolean(),
      result: fc.jsonValue(),
      error: fc.string(),
    }),
    fc.record({
      type: fc.constant('hello'),
      protocol: fc.constantFrom(PROTOCOL_VERSION, 0, 2),
      lastRevision: fc.nat(),
      inventory,
      address: fc.string(),
      instances: fc.array(observed, { maxLength: 3 }),
    }),
    fc.record({ type: fc.string(), payload: fc.jsonValue() }),
    fc.jsonValue(),
  )
  .map((m) => JSON.stringify(m));

test(`fuzz: ${RUNS} generated agent messages never affect another node, the transport or the control plane`, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'continuum-fuzz-'));
  const cp = await startControlPlane({
    listen: '127.0.0.1:0',
    agentListen: '127.0.0.1:0',
    dataDir: join(dir, 'cp'),
    // The fuzzer sends as fast as it can: its rate is not what this test is about.
    agentLimits: { messagesPerSecond: 1e6, messageBurst: 1e6 },
  });
  const errors: Error[] = [];
  cp.gateway!.on('error', (err: Error) => errors.push(err));
  try {
    const admin = http(cp.url, cp.adminToken!);
    const sha = createHash('sha256').update('disk').digest('hex');
    await admin.post('/v1/apply', {
      documents: [
        provider('acme'),
        site('acme', 'fra-1'),
        project('shop'),
        {
          kind: 'Image',
          metadata: { name: 'img', project: 'shop' },
          spec: { format: 'raw', files: { disk: { sha256: sha } } },
        },
      ],
    });
    await admin.put('/v1/projects/shop/images/img/files/disk', Buffer.from('disk'));
    const token = (await admin.post('/v1/providers/acme/sites/fra-1/join-tokens', { maxUses: 2 })).body.token;
    const caPem = await fetchPinnedCa(cp.gatewayUrl!, parseJoinToken(token)!.caFingerprint);
    const credential = async (name: string) =>
      (
        await postEnrolment(
          cp.gatewayUrl!,
          caPem,
          JSON.stringify({ token, name, inventory: simInventory(name) }),
        )
      ).body.credential as string;
    const open = (cred: string) =>
      new Promise<WebSocket>((resolve, reject) => {
        const ws = new WebSocket(`${cp.gatewayUrl!.replace(/^https/, 'wss')}${AGENT_CONNECT_PATH}`, {
          ...pinnedTls(caPem),
          headers: { authorization: `Bearer ${cred}` },
        });
        ws.once('open', () => resolve(ws));
        ws.once('error', reject);
      });
    const hello = (name: string) => JSON.stringify(helloMessage(name));

    // The bystander: a node running a replica, reported Running.
    const good = await open(await credential('good'));
    const desired = new Promise<any>((resolve) =>
      good.on('message', (d) => {
        const m = JSON.parse(String(d));
        if (m.type === 'desired' && m.instances.length) resolve(m.instances[0]);
      }),
    );
    good.send(hello('good'));
    await admin.post('/v1/apply', {
      documents: [workload('shop', 'w', { image: 'img', placement: { node: 'acme/good' } })],
    });
    const inst = await desired;
    good.send(
      JSON.stringify({
        type: 'observed',
        seq: 1,
        instances: [{ uid: inst.uid, revision: inst.revision, phase: 'Running', ports: [], restarts: 0 }],
      }),
    );
    const instanceNow = async () => (await admin.get('/v1/projects/shop/instances/w-0')).body;
    for (let i = 0; i < 200 && (await instanceNow()).status.phase !== 'Running'; i++)
      await new Promise((r) => setTimeout(r, 25));
    const before = await instanceNow();
    assert.equal(before.status.phase, 'Running');
    const goodNode = async () => {
      const n = (await admin.get('/v1/providers/acme/nodes/good')).body;
      return { spec: n.spec, state: n.status.state, inventory: n.status.inventory };
    };
    const nodeBefore = await goodNode();

    // The bystander keeps its heartbeats going, as a live node does.
    const beat = setInterval(
      () =>
        good.send(
          JSON.stringify({
            type: 'heartbeat',
            metrics: { cpuPercent: 5, memoryUsedMiB: 1, memoryTotalMiB: 2, load1: 0, load5: 0, load15: 0 },
            usage: [],
          }),
        ),
      1000,
    );
    const fuzzCred = await credential('fuzz');
    let ws = await open(fuzzCred);
    ws.send(hello('fuzz'));
    let sent = 0;
    let reconnects = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(message, { minLength: 10, maxLength: 10 }), async (batch) => {
        for (const text of batch) {
          if (ws.readyState !== WebSocket.OPEN) {
            reconnects++;
            ws = await open(fuzzCred);
            ws.send(hello('fuzz'));
          }
          ws.send(text);
          sent++;
        }
        // Let the batch be handled before the next one.
        await new Promise((r) => setTimeout(r, 5));
      }),
      {
        numRuns: Math.ceil(RUNS / 10),
        seed: Number(process.env.CONTINUUM_FUZZ_SEED ?? Date.now() % 2 ** 31),
      },
    );
    ws.close();
    await new Promise((r) => setTimeout(r, 300));
    clearInterval(beat);
    assert.ok(sent >= RUNS, `sent ${sent} messages`);
    assert.equal(cp.gateway!.stats.transportRestarts, 0, 'the transport thread never restarted');
    assert.deepEqual(
      errors.map((e) => e.message),
      [],
      'no error in the gateway',
    );
    assert.equal((await http(cp.url).get('/healthz')).status, 200);
    const after = await instanceNow();
    assert.deepEqual(after.status, before.status, "the other node's instance never changed");
    assert.equal(after.spec.node, 'acme/good');
    assert.deepEqual(await goodNode(), nodeBefore, 'the other node never changed');
    assert.ok(reconnects > 0, 'bad messages closed the connection (and the fuzzer came back)');
    good.close();
  } finally {
    await cp.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
