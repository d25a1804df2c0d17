// The agent gateway's edges, spoken to directly over TLS and WebSocket as a broken or
// hostile agent would: bad enrolment bodies, bad credentials, malformed messages, an
// unsupported protocol version, and a node connecting twice.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { fetchPinnedCa, pinnedRequest, pinnedTls, readAll } from '../src/agent/tls.js';
import { type ControlPlane, startControlPlane } from '../src/control-plane/index.js';
import {
  AGENT_CONNECT_PATH,
  AGENT_ENROL_PATH,
  PROTOCOL_VERSION,
  parseJoinToken,
} from '../src/protocol/index.js';
import { simInventory } from '../src/sim/index.js';
import { http } from './support/control-plane.js';
import { provider, site } from './support/fixtures.js';

describe('agent gateway edges', () => {
  let dir: string;
  let cp: ControlPlane;
  let caPem: string;
  let credential: string;

  const post = async (path: string, body: string) => {
    const r = await pinnedRequest(`${cp.gatewayUrl}${path}`, caPem, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    return { status: r.status, body: JSON.parse(await readAll(r.body)) };
  };

  /** A WebSocket to the gateway, open or refused (with the HTTP status). */
  const connect = (authorization: string, path = AGENT_CONNECT_PATH) =>
    new Promise<WebSocket | number>((resolve, reject) => {
      const ws = new WebSocket(`${cp.gatewayUrl!.replace(/^https/, 'wss')}${path}`, {
        ...pinnedTls(caPem),
        headers: { authorization },
      });
      ws.once('open', () => resolve(ws));
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.once('error', reject);
    });
  const closed = (ws: WebSocket) =>
    new Promise<{ code: number; reason: string }>((resolve) =>
      ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })),
    );
  const nextMessage = (ws: WebSocket) =>
    new Promise<any>((resolve) => ws.once('message', (d) => resolve(JSON.parse(String(d)))));
  const hello = (protocol = PROTOCOL_VERSION) =>
    JSON.stringify({
      type: 'hello',
      protocol,
      lastRevision: 0,
      inventory: simInventory('gw-1'),
      address: '127.0.0.1',
      instances: [],
    });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'continuum-gateway-'));
    cp = await startControlPlane({
      listen: '127.0.0.1:0',
      agentListen: '127.0.0.1:0',
      dataDir: join(dir, 'cp'),
    });
    const admin = http(cp.url, cp.adminToken!);
    const r = await admin.post('/v1/apply', { documents: [provider('acme'), site('acme', 'fra-1')] });
    assert.equal(r.status, 200, r.text);
    const t = await admin.post('/v1/providers/acme/sites/fra-1/join-tokens', { maxUses: 1 });
    const token = t.body.token as string;
    caPem = await fetchPinnedCa(cp.gatewayUrl!, parseJoinToken(token)!.caFingerprint);
    const e = await post(
      AGENT_ENROL_PATH,
      JSON.stringify({ token, name: 'gw-1', inventory: simInventory('gw-1') }),
    );
    assert.equal(e.status, 200, JSON.stringify(e.body));
    credential = e.body.credential;
  });

  after(async () => {
    await cp.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('enrolment bodies that are not JSON, too large, or sent elsewhere get clear errors', async () => {
    const bad = await post(AGENT_ENROL_PATH, '{"token": ');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'invalid_json');
    assert.match(bad.body.error.message, /request body is not valid JSON/);
    const big = await post(AGENT_ENROL_PATH, JSON.stringify({ pad: 'x'.repeat(1024 * 1024) }));
    assert.equal(big.status, 413);
    assert.equal(big.body.error.code, 'payload_too_large');
    const nowhere = await post('/v1/agent/nowhere', '{}');
    assert.equal(nowhere.status, 404);
    assert.match(nowhere.body.error.message, /no route POST \/v1\/agent\/nowhere/);
  });

  test('a connection needs a valid node credential and the agent path', async () => {
    assert.equal(
      await connect('Bearer ctn_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'),
      401,
    );
    assert.equal(await connect(''), 401);
    assert.equal(await connect(`Bearer ${credential}`, '/v1/agent/elsewhere'), 404);
  });

  test('a malformed message closes the connection with 4002; the node may connect again', async () => {
    const ws = (await connect(`Bearer ${credential}`)) as WebSocket;
    const done = closed(ws);
    ws.send('this is not JSON');
    assert.deepEqual(await done, { code: 4002, reason: 'malformed message' });
    const again = (await connect(`Bearer ${credential}`)) as WebSocket;
    const notObject = closed(again);
    again.send('[1, 2]');
    assert.equal((await notObject).code, 4002);
  });

  test('an unsupported protocol version is refused with both versions named', async () => {
    const ws = (await connect(`Bearer ${credential}`)) as WebSocket;
    const done = closed(ws);
    ws.send(hello(99));
    assert.deepEqual(await done, {
      code: 4003,
      reason: `protocol 99 not supported (server speaks ${PROTOCOL_VERSION})`,
    });
  });

  test('a second connection of the same node replaces the first, which is told why', async () => {
    const first = (await connect(`Bearer ${credential}`)) as WebSocket;
    const firstClosed = closed(first);
    const second = (await connect(`Bearer ${credential}`)) as WebSocket;
    assert.deepEqual(await firstClosed, { code: 4000, reason: 'replaced by a newer connection' });
    // The newer connection works: hello is answered with the node's full desired state.
    const desired = nextMessage(second);
    second.send(hello());
    assert.deepEqual(await desired, { type: 'desired', full: true, revision: 0, instances: [] });
    assert.ok(cp.gateway!.isConnected('acme', 'gw-1'));
    const gone = closed(second);
    second.close();
    await gone;
    // The gateway hears of the close from its transport a moment later.
    for (let i = 0; i < 100 && cp.gateway!.isConnected('acme', 'gw-1'); i++)
      await new Promise((r) => setTimeout(r, 20));
    assert.equal(cp.gateway!.isConnected('acme', 'gw-1'), false);
  });

  test('the last heartbeat before a write is stored as the agent sent it, and its reading kept for the console', async () => {
    const ws = (await connect(`Bearer ${credential}`)) as WebSocket;
    const desired = nextMessage(ws);
    ws.send(hello());
    await desired;
    const sent = (cpuPercent: number) => ({
      cpuPercent,
      memoryUsedMiB: 1536.5,
      memoryTotalMiB: 4096,
      load1: 0.25,
      load5: 1.5,
      load15: 2.75,
    });
    const before = (await cp.store.get('nodes', 'acme', 'gw-1'))!.status.lastHeartbeat;
    ws.send(JSON.stringify({ type: 'heartbeat', metrics: sent(12.34), usage: [] }));
    ws.send(JSON.stringify({ type: 'heartbeat', metrics: sent(56.78), usage: [] }));
    const heardBy = Date.now();
    // Written with the next batch once the node's last write is 10 s old (hello's).
    let stored: any;
    for (let i = 0; i < 150 && !stored; i++) {
      const n = await cp.store.get('nodes', 'acme', 'gw-1');
      if (n?.status.lastHeartbeat !== before) stored = n!.status;
      else await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(stored, 'the heartbeat was written');
    assert.deepEqual(stored.metrics, sent(56.78));
    const at = Date.parse(stored.lastHeartbeat);
    assert.ok(at <= Date.now() && heardBy - at < 5_000, `${stored.lastHeartbeat}: when it was heard`);
    assert.equal(stored.state, 'ready', 'what else the status holds stays');
    // One reading a 5 s gap: the first heartbeat's, CPU to a tenth, memory in percent.
    const metrics = await http(cp.url, cp.adminToken!).get('/v1/providers/acme/node-metrics?names=gw-1');
    assert.equal(metrics.status, 200, metrics.text);
    const [time, cpu, memory] = metrics.body.items[0].samples.at(-1);
    assert.ok(Math.abs(time * 1000 - heardBy) < 5_000);
    assert.deepEqual([cpu, memory], [12.3, 37.5]);
    ws.close();
  });

  test('if the transport thread dies, the gateway says so, drops its sessions and starts it again', async () => {
    const ws = (await connect(`Bearer ${credential}`)) as WebSocket;
    const desired = nextMessage(ws);
    ws.send(hello());
    await desired;
    assert.ok(cp.gateway!.isConnected('acme', 'gw-1'));
    const reported = new Promise<Error>((resolve) => cp.gateway!.once('error', resolve));
    const agentSees = closed(ws);
    // As a crash of the worker would: nobody asked it to stop.
    await (cp.gateway as unknown as { worker: import('node:worker_threads').Worker }).worker.terminate();
    assert.match((await reported).message, /the agent transport stopped \(exit \d+\); restarting it/);
    assert.equal(cp.gateway!.isConnected('acme', 'gw-1'), false);
    assert.equal(cp.gateway!.connectedCount, 0);
    assert.equal((await agentSees).code, 1006, 'the agent sees its connection drop');
    // The agent reconnects (as its backoff would) to the same address once the new
    // transport listens, and is a connected node again.
    let again: WebSocket | undefined;
    for (let i = 0; i < 100 && !again; i++) {
      const r = await connect(`Bearer ${credential}`).catch(() => undefined);
      if (r instanceof WebSocket) again = r;
      else await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(again, 'a new connection is accepted');
    const full = nextMessage(again);
    again.send(hello());
    assert.equal((await full).type, 'desired');
    assert.ok(cp.gateway!.isConnected('acme', 'gw-1'));
    again.close();
  });
});
