// A hostile node against a real control plane: crafted agent clients over TLS and
// WebSocket that send what a compromised or malicious node would — messages that break
// their schema, their size or nesting limit or the rate limit, reports about other
// nodes' instances, enrolments under taken names, inflated inventories — and a fuzz run
// over every message type. Each time: only that connection is closed, it is counted, and
// no other node's state changes.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import SQLite from 'better-sqlite3';
import { WebSocket } from 'ws';
import { fetchPinnedCa, pinnedTls } from '../src/agent/tls.js';
import { type ControlPlane, startControlPlane } from '../src/control-plane/index.js';
import {
  AGENT_CONNECT_PATH,
  AGENT_RELAY_PATH,
  CLOSE_CODES,
  type Inventory,
  parseJoinToken,
} from '../src/protocol/index.js';
import { SERVER_MESSAGE_SCHEMAS, schemaErrors } from '../src/protocol/schemas.js';
import { simInventory, startSimNode } from '../src/sim/index.js';
import { http } from './support/control-plane.js';
import { helloMessage, postEnrolment } from './support/crafted-agent.js';
import { project, provider, site, workload } from './support/fixtures.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

interface Client {
  ws: WebSocket;
  /** Every message received, parsed, in order. */
  received: any[];
  closed: Promise<{ code: number; reason: string }>;
  next(type: string, pred?: (m: any) => boolean): Promise<any>;
  send(msg: unknown): void;
}

describe('a hostile agent', () => {
  let dir: string;
  let cp: ControlPlane;
  let admin: ReturnType<typeof http>;
  let caPem: string;
  const credentials = new Map<string, string>();

  const enrolBody = (body: string) => postEnrolment(cp.gatewayUrl!, caPem, body);
  const token = async (siteName = 'fra-1', body: object = {}) => {
    const t = await admin.post(`/v1/providers/acme/sites/${siteName}/join-tokens`, { maxUses: 1, ...body });
    assert.equal(t.status, 201, t.text);
    return t.body.token as string;
  };
  const enrol = async (name: string, inventory: Inventory = simInventory(name), siteName = 'fra-1') => {
    const r = await enrolBody(JSON.stringify({ token: await token(siteName), name, inventory }));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    credentials.set(name, r.body.credential);
    return r.body.credential as string;
  };

  const connect = (name: string) =>
    new Promise<Client>((resolve, reject) => {
      const ws = new WebSocket(`${cp.gatewayUrl!.replace(/^https/, 'wss')}${AGENT_CONNECT_PATH}`, {
        ...pinnedTls(caPem),
        headers: { authorization: `Bearer ${credentials.get(name)}` },
      });
      const received: any[] = [];
      const waiters: { type: string; pred: (m: any) => boolean; resolve: (m: any) => void }[] = [];
      ws.on('message', (d) => {
        const m = JSON.parse(String(d));
        received.push(m);
        for (const w of [...waiters])
          if (w.type === m.type && w.pred(m)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(m);
          }
      });
      const closed = new Promise<{ code: number; reason: string }>((res) =>
        ws.once('close', (code, reason) => res({ code, reason: String(reason) })),
      );
      ws.once('open', () =>
        resolve({
          ws,
          received,
          closed,
          next: (type, pred = () => true) =>
            new Promise((res) => {
              const had = received.find((m) => m.type === type && pred(m));
              if (had) res(had);
              else waiters.push({ type, pred, resolve: res });
            }),
          send: (msg) => ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg)),
        }),
      );
      ws.once('error', reject);
    });

  const hello = (name: string, over: object = {}) => helloMessage(name, { seq: 1, ...over });
  /** A connected node that said hello and got its desired state. */
  const greeted = async (name: string, over: object = {}) => {
    const c = await connect(name);
    c.send(hello(name, over));
    await c.next('desired');
    return c;
  };
  const nodeRow = async (name: string) => (await admin.get(`/v1/providers/acme/nodes/${name}`)).body;
  const until = async <T>(what: string, fn: () => Promise<T | undefined | false>, ms = 10_000) => {
    const end = Date.now() + ms;
    for (;;) {
      const v = await fn();
      if (v) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const instancesOf = async (wl: string) =>
    (await admin.get(`/v1/projects/shop/instances?workload=${wl}`)).body.items as any[];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'continuum-hostile-'));
    cp = await startControlPlane({
      listen: '127.0.0.1:0',
      agentListen: '127.0.0.1:0',
      dataDir: join(dir, 'cp'),
      agentLimits: { messagesPerSecond: 20, messageBurst: 40 },
    });
    admin = http(cp.url, cp.adminToken!);
    const r = await admin.post('/v1/apply', {
      documents: [
        provider('acme', { maxNode: { cpus: 64 } }),
        site('acme', 'fra-1', { maxNode: { memoryMiB: 65536 } }),
        site('acme', 'ber-1'),
        project('shop'),
        {
          kind: 'Image',
          metadata: { name: 'img', project: 'shop' },
          spec: { format: 'raw', files: { disk: { sha256: sha('disk') } } },
        },
      ],
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(
      (await admin.put('/v1/projects/shop/images/img/files/disk', Buffer.from('disk'))).status,
      200,
    );
    const t = await token();
    caPem = await fetchPinnedCa(cp.gatewayUrl!, parseJoinToken(t)!.caFingerprint);
  });

  after(async () => {
    await cp.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a message that breaks its schema closes only that connection (4004), counted; the other node goes on', async () => {
    await enrol('bad-1');
    await enrol('good-1');
    const good = await greeted('good-1');
    const bad = await greeted('bad-1');
    const before = cp.gateway!.stats.rejected.invalid ?? 0;
    bad.send({ type: 'heartbeat', metrics: { cpuPercent: 'lots' }, usage: [] });
    const closed = await bad.closed;
    assert.equal(closed.code, CLOSE_CODES.invalid);
    assert.match(closed.reason, /heartbeat\.metrics/);
    // Counted by the main thread once the transport's batch arrives.
    await until('counted', async () => cp.gateway!.stats.rejected.invalid === before + 1);
    // Counted in /metrics too.
    const metrics = await admin.get('/metrics');
    assert.match(metrics.text, /continuum_agent_messages_rejected_total\{reason="invalid"\} [1-9]/);
    // The good node is still connected and heard.
    assert.equal(good.ws.readyState, WebSocket.OPEN);
    good.send({ type: 'observed', instances: [], seq: 2 });
    assert.equal((await good.next('ack', (m) => m.seq === 2)).seq, 2);
    good.ws.close();
  });

  test('unknown types, wrong field types, unknown fields and out-of-bound inventories are refused', async () => {
    const cases: [string, unknown][] = [
      ['unknown type', { type: 'shutdown-everything' }],
      ['inventory over bounds', hello('bad-1', { inventory: simInventory('bad-1', { cpus: 10_000_000 }) })],
      ['unknown field', { type: 'probes', rttMs: {}, extra: 1 }],
      ['negative rtt', { type: 'probes', rttMs: { Madrid: -1 } }],
      ['instance uid of another shape', { type: 'observed', instances: [{ uid: "x'; drop table" }] }],
    ];
    for (const [what, msg] of cases) {
      const c = await connect('bad-1');
      // A hello first where the case is not itself a hello.
      if ((msg as { type: string }).type !== 'hello') {
        c.send(hello('bad-1'));
        await c.next('desired');
      }
      c.send(msg);
      assert.equal((await c.closed).code, CLOSE_CODES.invalid, what);
    }
  });

  test('the migration relay lets only a migration’s own two nodes in, with a well-formed request', async () => {
    await greeted('bad-1');
    const relay = (query: string, name = 'bad-1') =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(`${cp.gatewayUrl!.replace(/^https/, 'wss')}${AGENT_RELAY_PATH}?${query}`, {
          ...pinnedTls(caPem),
          headers: { authorization: `Bearer ${credentials.get(name) ?? 'ctn_nobody'}` },
        });
        ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.once('open', () => {
          ws.terminate();
          resolve(101);
        });
        ws.once('error', () => resolve(-1));
      });
    const m = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';
    // No migration of this node: refused as unknown credentials are.
    assert.equal(await relay(`migration=${m}&stream=migration&side=send`), 401);
    // Malformed: named.
    assert.equal(await relay('migration=x;drop&stream=migration&side=send'), 400);
    assert.equal(await relay(`migration=${m}&stream=disk&side=send`), 400);
    // Granted to another pair of nodes: still refused for this one, let in for the source.
    const end = cp.gateway!.allowRelay(m, 'acme/good-1', 'acme/good-2');
    assert.equal(await relay(`migration=${m}&stream=migration&side=send`), 401);
    await greeted('good-1');
    assert.equal(await relay(`migration=${m}&stream=migration&side=send`, 'good-1'), 101);
    assert.equal(
      await relay(`migration=${m}&stream=migration&side=receive`, 'good-1'),
      401,
      'not its destination',
    );
    end();
    assert.equal(await relay(`migration=${m}&stream=migration&side=send`, 'good-1'), 401, 'the grant ended');
  });

  test('messages before hello are refused: a node is heard only once it has reported', async () => {
    const c = await connect('bad-1');
    c.send({ type: 'heartbeat', metrics: simMetrics(), usage: [] });
    const closed = await c.closed;
    assert.equal(closed.code, CLOSE_CODES.invalid);
    assert.match(closed.reason, /first message must be hello/);
  });

  test("a message over its type's size limit, or nested too deeply, is refused before it is parsed (4005)", async () => {
    const big = await greeted('bad-1');
    // 200 KiB: far below the largest message of the protocol, over a heartbeat's limit.
    big.send(`{"type":"heartbeat","pad":"${'x'.repeat(200 * 1024)}"}`);
    const closed = await big.closed;
    assert.equal(closed.code, CLOSE_CODES.tooLarge);
    assert.match(closed.reason, /heartbeat of \d+ bytes \(limit 131072\)/);
    const deep = await greeted('bad-1');
    deep.send(`{"type":"observed","instances":${'['.repeat(5000)}${']'.repeat(5000)}}`);
    assert.equal((await deep.closed).code, CLOSE_CODES.tooLarge);
    await until('counted', async () => (cp.gateway!.stats.rejected.too_deep ?? 0) >= 1);
    // Beyond the largest message of any type: ws refuses the frame as it arrives.
    const huge = await greeted('bad-1');
    huge.send(Buffer.alloc(9 * 1024 * 1024, 0x20));
    // The gateway closes with 1009 at once; a sender still writing the rest of its 9 MiB
    // may see its socket reset before that close frame reaches it (1006).
    assert.ok([1009, 1006].includes((await huge.closed).code));
    assert.equal(cp.gateway!.stats.transportRestarts, 0);
  });

  test('a connection over its message rate is closed (4006) and counted; others are not slowed', async () => {
    const flood = await greeted('bad-1');
    for (let i = 0; i < 100; i++) flood.send({ type: 'heartbeat', metrics: simMetrics(), usage: [] });
    const closed = await flood.closed;
    assert.equal(closed.code, CLOSE_CODES.rateLimited);
    await until('counted', async () => (cp.gateway!.stats.rejected.rate_limited ?? 0) >= 1);
    const good = await greeted('good-1');
    good.send({ type: 'observed', instances: [], seq: 5 });
    await good.next('ack', (m) => m.seq === 5);
    good.ws.close();
  });

  test("a report about another node's instance is refused and changes nothing; the ack says so", async () => {
    const victim = await greeted('good-1');
    const apply = await admin.post('/v1/apply', {
      documents: [workload('shop', 'victim', { image: 'img', placement: { node: 'acme/good-1' } })],
    });
    assert.equal(apply.status, 200, apply.text);
    const pushed = await victim.next('desired', (m) => m.instances.some((i: any) => i.name === 'victim-0'));
    const inst = pushed.instances.find((i: any) => i.name === 'victim-0');
    // Every message the control plane sends matches its schema.
    for (const m of victim.received)
      assert.deepEqual(
        schemaErrors(SERVER_MESSAGE_SCHEMAS[m.type as keyof typeof SERVER_MESSAGE_SCHEMAS], m),
        [],
      );
    victim.send({
      type: 'observed',
      seq: 2,
      instances: [{ uid: inst.uid, revision: inst.revision, phase: 'Running', ports: [], restarts: 0 }],
    });
    await victim.next('ack', (m) => m.seq === 2);
    const running = await until('victim running', async () => {
      const [i] = await instancesOf('victim');
      return i?.status.phase === 'Running' && i;
    });

    const attacker = await greeted('bad-1');
    attacker.send({
      type: 'observed',
      seq: 7,
      instances: [
        {
          uid: inst.uid,
          revision: inst.revision + 100,
          phase: 'Failed',
          ports: [],
          restarts: 9,
          message: 'pwned',
        },
        { uid: inst.uid, revision: inst.revision, phase: 'Absent', ports: [], restarts: 0 },
      ],
    });
    const ack = await attacker.next('ack', (m) => m.seq === 7);
    assert.deepEqual(ack.refused, [
      { uid: inst.uid, reason: 'not bound to this node' },
      { uid: inst.uid, reason: 'not bound to this node' },
    ]);
    const [after] = await instancesOf('victim');
    assert.deepEqual(after.status, running.status, "the other node's instance is untouched");
    assert.equal(after.spec.node, 'acme/good-1');
    attacker.ws.close();
    victim.ws.close();
  });

  test('instances that ended on their node are deleted together; a second word of one gone is refused', async () => {
    await enrol('ender');
    const node = await greeted('ender');
    const apply = await admin.post('/v1/apply', {
      documents: [
        workload('shop', 'ending', { image: 'img', replicas: 2, placement: { node: 'acme/ender' } }),
      ],
    });
    assert.equal(apply.status, 200, apply.text);
    // Each replica's latest desired state, from whichever push carried it.
    const latest = () => {
      const byName = new Map<string, any>();
      for (const m of node.received)
        if (m.type === 'desired')
          for (const i of m.instances) if (i.name.startsWith('ending-')) byName.set(i.name, i);
      return [...byName.values()].sort((x, y) => (x.name < y.name ? -1 : 1));
    };
    const [a, b] = await until('both replicas pushed', async () => latest().length === 2 && latest());
    const word = (i: any, phase: string) => ({
      uid: i.uid,
      revision: i.revision,
      phase,
      ports: [],
      restarts: 0,
    });
    node.send({ type: 'observed', seq: 2, instances: [word(a, 'Running'), word(b, 'Running')] });
    await node.next('ack', (m) => m.seq === 2);
    assert.equal((await admin.del('/v1/projects/shop/workloads/ending')).status, 200);
    await until('both replicas told to go', async () => latest().every((i) => i.desired === 'absent'));
    const mark = (await admin.get('/v1/events?limit=1000')).body.items.at(-1).position;
    node.send({
      type: 'observed',
      seq: 3,
      instances: [word(a, 'Deleting'), word(a, 'Absent'), word(b, 'Absent'), word(b, 'Absent')],
    });
    const ack = await node.next('ack', (m) => m.seq === 3);
    assert.deepEqual(ack.refused, [{ uid: b.uid, reason: 'not bound to this node' }]);
    assert.deepEqual(await instancesOf('ending'), []);
    const events = (await admin.get(`/v1/events?kind=Instance&after=${mark}`)).body.items;
    assert.deepEqual(
      events.filter((e: any) => e.action === 'delete').map((e: any) => [e.name, e.actor]),
      [
        [a.name, 'node:acme/ender'],
        [b.name, 'node:acme/ender'],
      ],
    );
    node.ws.close();
  });

  test("a report whose write fails is not acknowledged, and does not drop another node's report in the same batch", async () => {
    await enrol('flaky');
    await enrol('steady');
    const nodes = { flaky: await greeted('flaky'), steady: await greeted('steady') };
    const uids: Record<string, string> = {};
    for (const [name, c] of Object.entries(nodes)) {
      await admin.post('/v1/apply', {
        documents: [workload('shop', `on-${name}`, { image: 'img', placement: { node: `acme/${name}` } })],
      });
      const d = (await c.next('desired', (m) => m.instances.some((i: any) => i.name === `on-${name}-0`)))
        .instances[0];
      uids[name] = d.uid;
    }
    const report = (name: keyof typeof nodes, seq: number, phase: string) =>
      nodes[name].send({
        type: 'observed',
        seq,
        instances: [{ uid: uids[name], revision: 1, phase, ports: [], restarts: 0 }],
      });
    // A real failure of the store, for one node's rows only: an SQLite trigger.
    const db = new SQLite(join(dir, 'cp', 'continuum.db'));
    try {
      db.exec(`CREATE TRIGGER refuse_flaky BEFORE UPDATE OF phase ON instances
               WHEN NEW.node = 'flaky' AND NEW.phase = 'Stopped'
               BEGIN SELECT RAISE(ABORT, 'injected failure for node flaky'); END`);
      // Sent together: they share a batch.
      report('flaky', 10, 'Stopped');
      report('steady', 10, 'Stopped');
      assert.equal((await nodes.steady.next('ack', (m) => m.seq === 10)).seq, 10);
      const phase = async (wl: string) => (await instancesOf(wl))[0].status.phase;
      assert.equal(await phase('on-steady'), 'Stopped');
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(
        !nodes.flaky.received.some((m) => m.type === 'ack' && m.seq === 10),
        'a failed write is not acknowledged',
      );
      assert.notEqual(await phase('on-flaky'), 'Stopped');
      // Surfaced: counted, and in /metrics.
      assert.ok(cp.gateway!.stats.failedWrites.reports >= 1);
      assert.match(
        (await admin.get('/metrics')).text,
        /continuum_agent_gateway_failed_writes\{what="reports"\} [1-9]/,
      );
      db.exec('DROP TRIGGER refuse_flaky');
      // The agent sends it again (as the real agent does, next test): now it is stored.
      report('flaky', 11, 'Stopped');
      await nodes.flaky.next('ack', (m) => m.seq === 11);
      assert.equal(await phase('on-flaky'), 'Stopped');
    } finally {
      db.close();
      nodes.flaky.ws.close();
      nodes.steady.ws.close();
    }
  });

  test('the agent resends a report the control plane could not store, until it is acknowledged', async () => {
    const node = await startSimNode(
      cp.gatewayUrl!,
      join(dir, 'agents'),
      { name: 'resender', joinToken: await token() },
      undefined,
      {
        resendAfterMs: 200,
      },
    );
    try {
      await admin.post('/v1/apply', {
        documents: [workload('shop', 'resent', { image: 'img', placement: { node: 'acme/resender' } })],
      });
      await until('running', async () => (await instancesOf('resent'))[0]?.status.phase === 'Running');
      const db = new SQLite(join(dir, 'cp', 'continuum.db'));
      try {
        db.exec(`CREATE TRIGGER refuse_stopped BEFORE UPDATE OF phase ON instances
                 WHEN NEW.node = 'resender' AND NEW.phase = 'Stopped'
                 BEGIN SELECT RAISE(ABORT, 'injected failure'); END`);
        assert.equal((await admin.post('/v1/projects/shop/instances/resent-0/stop', {})).status, 200);
        await until(
          'the agent stopped it',
          async () =>
            (await node.runtime.inspect((await instancesOf('resent'))[0].metadata.uid)).state === 'stopped',
        );
        await new Promise((r) => setTimeout(r, 500));
        assert.equal(
          (await instancesOf('resent'))[0].status.phase,
          'Running',
          'the report could not be stored',
        );
      } finally {
        db.exec('DROP TRIGGER IF EXISTS refuse_stopped');
        db.close();
      }
      // Nothing changes on the node any more: only the resend can bring the report.
      await until(
        'resent and stored',
        async () => (await instancesOf('resent'))[0].status.phase === 'Stopped',
      );
    } finally {
      await node.agent.stop();
    }
  });

  test('enrolling under the name of an enrolled node is refused and costs no token use', async () => {
    const t = await token('fra-1', { maxUses: 2 });
    const r = await enrolBody(
      JSON.stringify({ token: t, name: 'good-1', inventory: simInventory('good-1') }),
    );
    assert.equal(r.status, 409);
    assert.match(r.body.error.message, /node 'acme\/good-1' is already enrolled: revoke it first/);
    assert.match(r.body.error.message, /--replaces good-1/);
    const tokens = (await admin.get('/v1/providers/acme/sites/fra-1/join-tokens')).body.items as any[];
    assert.equal(tokens.find((x) => t.includes(x.id)).uses, 0);
    // The node's credential still works.
    const c = await greeted('good-1');
    c.ws.close();
  });

  test("a node enrolled anew (revoked first, or with a token that replaces it) never receives the old node's desired state", async () => {
    await enrol('reused');
    const first = await greeted('reused');
    await admin.post('/v1/apply', {
      documents: [
        workload('shop', 'secret', {
          image: 'img',
          userData: '#cloud-config\n# tenant secret',
          placement: { node: 'acme/reused' },
        }),
      ],
    });
    const old = (await first.next('desired', (m) => m.instances.some((i: any) => i.name === 'secret-0')))
      .instances[0];
    first.ws.close();

    // Revoked, then enrolled again under the same name: it starts empty.
    assert.equal((await admin.post('/v1/providers/acme/nodes/reused/revoke', {})).status, 200);
    await enrol('reused');
    assert.equal((await nodeRow('reused')).status.state, 'enrolled', 'not placed on before it reports');
    const second = await greeted('reused');
    const full = second.received.find((m) => m.type === 'desired' && m.full);
    assert.deepEqual(full.instances, [], 'no instance of the machine that had the name before');
    // The evicted replica is a new instance (pinned, it waits for its node to report).
    const [again] = await until('replica placed again', async () => {
      const items = await instancesOf('secret');
      return items.length === 1 && items[0].metadata.uid !== old.uid && items;
    });
    assert.notEqual(again.metadata.uid, old.uid);
    const events = (await admin.get('/v1/events?kind=Instance&limit=200')).body.items as any[];
    assert.ok(events.some((e) => e.action === 'evict' && e.name === 'secret-0'));
    second.ws.close();

    // A token issued to replace the node enrols it even with its credential still valid.
    const replace = await admin.post('/v1/providers/acme/sites/fra-1/join-tokens', { replaces: 'reused' });
    assert.equal(replace.status, 201, replace.text);
    assert.equal(replace.body.replaces, 'reused');
    const other = await enrolBody(
      JSON.stringify({ token: replace.body.token, name: 'someone-else', inventory: simInventory('x') }),
    );
    assert.equal(other.status, 409);
    assert.match(
      other.body.error.message,
      /issued to replace node 'acme\/reused', not to enrol 'someone-else'/,
    );
    const replace2 = await admin.post('/v1/providers/acme/sites/fra-1/join-tokens', { replaces: 'reused' });
    const ok = await enrolBody(
      JSON.stringify({ token: replace2.body.token, name: 'reused', inventory: simInventory('reused') }),
    );
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const bad = await admin.post('/v1/providers/acme/sites/ber-1/join-tokens', { replaces: 'reused' });
    assert.equal(bad.status, 409);
    assert.match(bad.body.error.message, /is at site 'fra-1', not 'ber-1'/);
  });

  test("an inventory beyond the provider's or site's maxNode is refused at enrolment and capped afterwards", async () => {
    const t = await token();
    const r = await enrolBody(
      JSON.stringify({
        token: t,
        name: 'liar',
        inventory: simInventory('liar', { cpus: 512, memoryMiB: 1 << 20 }),
      }),
    );
    assert.equal(r.status, 400);
    assert.match(
      r.body.error.message,
      /inventory\.cpus claims 512 CPUs, more than the 64 that provider acme declares/,
    );
    assert.match(r.body.error.message, /inventory\.memoryMiB .* site acme\/fra-1 declares/);
    await enrol('liar', simInventory('liar', { cpus: 64 }));
    const c = await connect('liar');
    c.send(hello('liar', { inventory: simInventory('liar', { cpus: 4000 }) }));
    await c.next('desired');
    const n = await until('capped inventory', async () => {
      const row = await nodeRow('liar');
      return row.status.inventoryClaim && row;
    });
    assert.equal(n.status.inventory.cpus, 64);
    assert.equal(n.status.inventoryClaim.inventory.cpus, 4000);
    assert.match(n.status.inventoryClaim.cappedBy, /inventory\.cpus claims 4000 CPUs/);
    c.ws.close();
  });

  test('enrolment bodies of the wrong shape are 400s that name the field, never 500s', async () => {
    for (const body of [
      { token: 42, inventory: simInventory('x') },
      { token: ['ctj_'], inventory: simInventory('x') },
      { token: 'ctj_x', inventory: { cpus: 'many' } },
      null,
      'just a string',
    ]) {
      const r = await enrolBody(JSON.stringify(body));
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.error.code, 'invalid_request');
    }
    const r = await enrolBody(JSON.stringify({ token: 42, inventory: simInventory('x') }));
    assert.match(r.body.error.message, /token: /);
  });
});

function simMetrics() {
  return { cpuPercent: 10, memoryUsedMiB: 100, memoryTotalMiB: 1000, load1: 0, load5: 0, load15: 0 };
}
