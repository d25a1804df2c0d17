// Several control-plane replicas on one PostgreSQL database (issue: high availability):
// each serves the API, the event stream and agents; one leads and runs the controllers
// under a fenced lease; every commit reaches every replica through the durable change
// feed, in commit order.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type ControlPlane, startControlPlane } from '../src/control-plane/index.js';
import { type SimNode, startSimNode } from '../src/sim/index.js';
import {
  type AuditEvent,
  acquireLease,
  FeedFollower,
  isFenced,
  readLease,
  Store,
} from '../src/store/index.js';
import { runCli } from './support/cli.js';
import { type Http, http } from './support/control-plane.js';
import { testDatabase } from './support/engines.js';
import { project, provider, site } from './support/fixtures.js';
import { freePort } from './support/processes.js';
import { waitFor } from './support/test-image.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** Reads server-sent events of a stream into `into` until aborted. */
async function follow(url: string, token: string, into: AuditEvent[], signal: AbortSignal): Promise<void> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal });
  const reader = res.body!.getReader();
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += Buffer.from(value).toString();
      for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
        const data = buf
          .slice(0, i)
          .split('\n')
          .find((l) => l.startsWith('data: '));
        buf = buf.slice(i + 2);
        if (data) into.push(JSON.parse(data.slice(6)));
      }
    }
  } catch {
    // aborted
  }
}

describe('control-plane replicas on one PostgreSQL database', () => {
  let db: Awaited<ReturnType<typeof testDatabase>>;
  const cps = new Map<string, ControlPlane>();
  const dirs: string[] = [];
  let token: string;
  const nodes: SimNode[] = [];

  const startReplica = async (name: string) => {
    const dataDir = mkdtempSync(join(tmpdir(), `continuum-replica-${name}-`));
    dirs.push(dataDir);
    const first = cps.size === 0;
    const cp = await startControlPlane({
      listen: '127.0.0.1:0',
      agentListen: '127.0.0.1:0',
      dataDir,
      databaseUrl: db.databaseUrl,
      databaseSchema: db.databaseSchema,
      replicaName: name,
      // The CA's key is shared by copy; here, one file.
      caKeyFile: join(dirs[0]!, 'ca.key'),
      leaseTtlMs: 3000,
      leaseRenewMs: 500,
      nodeSuspectAfterMs: 4000,
      nodeDownAfterMs: 8000,
    });
    if (first) token = cp.adminToken!;
    else assert.equal(cp.adminToken, undefined, 'only the first start of the database makes an admin');
    cps.set(name, cp);
    return cp;
  };
  const api = (name: string): Http => http(cps.get(name)!.url, token);

  before(async () => {
    db = await testDatabase('postgres');
    await startReplica('a');
    await startReplica('b');
    await startReplica('c');
  });

  after(async () => {
    for (const n of nodes) await n.agent.stop();
    for (const cp of cps.values()) await cp.close();
    await db.cleanup();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test('every replica is listed with its address; exactly one leads, with its epoch and lease', async () => {
    const r = await api('b').get('/v1/replicas');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(
      r.body.items.map((i: any) => [i.name, i.address]),
      ['a', 'b', 'c'].map((n) => [n, cps.get(n)!.url]),
    );
    const leaders = r.body.items.filter((i: any) => i.leader);
    assert.equal(leaders.length, 1);
    assert.equal(leaders[0].name, 'a', 'the first replica took the lease');
    assert.ok(leaders[0].epoch >= 1);
    assert.ok(Date.parse(leaders[0].leaseExpiresAt) > Date.now() - 1000);
    assert.deepEqual(r.body.leader, {
      name: 'a',
      epoch: leaders[0].epoch,
      leaseExpiresAt: leaders[0].leaseExpiresAt,
    });
    assert.deepEqual(
      r.body.items.filter((i: any) => i.answering).map((i: any) => i.name),
      ['b'],
    );
    assert.ok(r.body.items.every((i: any) => i.gateway.startsWith('https://')));
    assert.equal(cps.get('a')!.leadership.leading, true);
    assert.equal(cps.get('b')!.leadership.leading, false);
    assert.throws(() => cps.get('b')!.controller, /does not lead/);

    // The CLI: several addresses, the first of which is down; -o json has the same fields.
    const dead = `http://127.0.0.1:${await freePort()}`;
    const env = { CONTINUUM_CONFIG: join(dirs[0]!, 'cli.yaml') };
    const cli = await runCli(
      ['--server', `${dead},${cps.get('c')!.url}`, '--token', token, 'get', 'replicas', '-o', 'json'],
      env,
    );
    assert.equal(cli.code, 0, cli.stderr);
    const listed = JSON.parse(cli.stdout).items;
    assert.deepEqual(
      listed.map((i: any) => [i.name, i.leader, i.epoch]),
      r.body.items.map((i: any) => [i.name, i.leader, i.epoch]),
    );
    assert.equal(listed.find((i: any) => i.answering).name, 'c');
    const table = await runCli(['--server', cps.get('a')!.url, '--token', token, 'get', 'replicas'], env);
    assert.match(table.stdout, /^NAME\s+ADDRESS\s+LEADER\s+EPOCH\s+LEASE EXPIRES/m);
    assert.match(table.stdout, /^a \*\s+http:\/\/127\.0\.0\.1:\d+\s+true\s+\d+/m);
    const none = await runCli(['--server', `${dead},${dead}/`, '--token', token, 'get', 'replicas'], env);
    assert.notEqual(none.code, 0);
    assert.equal(
      none.stderr,
      `error: none of the control plane's replicas answered: ${dead} (ECONNREFUSED), ${dead} (ECONNREFUSED)\n`,
    );
  });

  test('a write on any replica reaches the event streams of the others, once and in order', async () => {
    const seen: AuditEvent[] = [];
    const ac = new AbortController();
    const reading = follow(`${cps.get('c')!.url}/v1/events/watch?kind=Provider`, token, seen, ac.signal);
    await new Promise((r) => setTimeout(r, 300));
    for (const [i, via] of ['a', 'b', 'c', 'b'].entries()) {
      const res = await api(via).post('/v1/providers', provider(`streamed-${i}`));
      assert.equal(res.status, 201, res.text);
    }
    await waitFor('four events on replica c', async () => seen.length >= 4, 15_000);
    ac.abort();
    await reading;
    assert.deepEqual(
      seen.map((e) => e.name),
      ['streamed-0', 'streamed-1', 'streamed-2', 'streamed-3'],
    );
    const positions = seen.map((e) => e.position);
    assert.deepEqual(
      positions,
      [...positions].sort((x, y) => x - y),
    );
    // Resuming on another replica after the second gives the last two.
    const resumed = await api('a').get(`/v1/events?kind=Provider&after=${positions[1]}`);
    assert.deepEqual(
      resumed.body.items.map((e: AuditEvent) => e.name),
      ['streamed-2', 'streamed-3'],
    );
  });

  test('agents on a replica that does not lead: placed by the leader, pushed by their replica, kept ready', async () => {
    const admin = api('b');
    const r = await admin.post('/v1/apply', {
      documents: [
        provider('fra-cloud'),
        site('fra-cloud', 'fra-1'),
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
    // The content is in the database: another replica serves it (fetched, checked, cached).
    const got = await fetch(`${cps.get('a')!.url}/v1/projects/shop/images/img/files/disk`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(got.status, 200);
    assert.equal(await got.text(), 'disk');
    assert.equal(got.headers.get('x-content-sha256'), sha('disk'));
    const jt = await admin.post('/v1/providers/fra-cloud/sites/fra-1/join-tokens', { maxUses: 10 });
    // Each agent knows every replica's gateway, b's first: b holds their connections.
    const gateways = ['b', 'c', 'a'].map((n) => cps.get(n)!.gatewayUrl!).join(',');
    for (const name of ['n1', 'n2', 'n3'])
      nodes.push(
        await startSimNode(gateways, join(dirs[0]!, 'nodes'), { name, joinToken: jt.body.token }, undefined, {
          heartbeatIntervalMs: 500,
        }),
      );
    await waitFor('b holds the three agents', async () => cps.get('b')!.gateway!.connectedCount === 3);
    await waitFor(
      'the leader marks the nodes ready from what b heard',
      async () => {
        const items = (await api('a').get('/v1/providers/fra-cloud/nodes')).body.items;
        return items.length === 3 && items.every((n: any) => n.status.state === 'ready');
      },
      20_000,
    );
    const w = await api('c').post('/v1/apply', {
      documents: [
        {
          kind: 'Workload',
          metadata: { name: 'web', project: 'shop' },
          spec: { kind: 'vm', image: 'img', replicas: 3, resources: { vcpus: 1, memoryMiB: 256 } },
        },
      ],
    });
    assert.equal(w.status, 200, w.text);
    const running = await waitFor(
      'three replicas running',
      async () => {
        const items = (await api('c').get('/v1/projects/shop/instances?workload=web')).body.items;
        return items.length === 3 && items.every((i: any) => i.status.phase === 'Running') && items;
      },
      30_000,
    );
    const placed = (await api('a').get('/v1/events?kind=Instance&limit=1000')).body.items.filter(
      (e: AuditEvent) => e.action === 'create',
    );
    assert.equal(placed.length, 3);
    assert.ok(placed.every((e: AuditEvent) => e.actor === 'controller:workloads'));
    assert.equal(new Set(running.map((i: any) => i.spec.node)).size, 3, 'spread over the three nodes');
    // A request for an agent on b, asked of a and c, is passed on to b (signed).
    for (const via of ['a', 'c']) {
      const c = await api(via).get('/v1/projects/shop/instances/web-0/console?offset=0&limit=65536');
      assert.equal(c.status, 200, c.text);
      assert.match(c.body.data, /simulated boot of web-0/);
    }
    const forged = await fetch(`${cps.get('b')!.url}/internal/agent-request`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-continuum-replica': `${Date.now()} ${'0'.repeat(64)}`,
      },
      body: JSON.stringify({
        provider: 'fra-cloud',
        node: 'n1',
        method: 'console',
        params: {},
        timeoutMs: 1000,
      }),
    });
    assert.equal(forged.status, 401, 'only a replica holding the CA key may pass requests on');
    // The nodes' recent metrics (kept by b, which hears their heartbeats) from a and c too.
    for (const via of ['b', 'a', 'c']) {
      const m = await api(via).get('/v1/providers/fra-cloud/node-metrics?names=n1,n2,n3,gone');
      assert.equal(m.status, 200, m.text);
      const by = new Map(m.body.items.map((i: any) => [i.node, i.samples.length]));
      assert.ok(
        ['n1', 'n2', 'n3'].every((n) => (by.get(n) as number) > 0),
        `samples via ${via}: ${m.text}`,
      );
      assert.equal(by.get('gone'), 0);
    }
    const forgedMetrics = await fetch(`${cps.get('b')!.url}/internal/node-metrics`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ provider: 'fra-cloud', names: ['n1'] }),
    });
    assert.equal(forgedMetrics.status, 401);
    // Nothing stays behind: the agents run exactly what is bound to them.
    const sims = nodes.reduce((n, s) => n + s.runtime.size, 0);
    assert.equal(sims, 3);
  });

  test('the leader stops: another takes over with the next epoch; agents move and nothing is placed twice', async () => {
    const before = await readLease(cps.get('a')!.store);
    const b = cps.get('b')!;
    // Closing b moves its agents to c (next in their lists); closing a hands the lease over.
    await b.close();
    cps.delete('b');
    await waitFor('the agents reconnected to c', async () => cps.get('c')!.gateway!.connectedCount === 3);
    const t0 = Date.now();
    await cps.get('a')!.close();
    cps.delete('a');
    await waitFor('c leads', async () => cps.get('c')!.leadership.leading, 10_000);
    const took = Date.now() - t0;
    const lease = await readLease(cps.get('c')!.store);
    assert.equal(lease!.replica, 'c');
    assert.match(lease!.holder, /^c#[0-9a-f]{8}$/);
    assert.ok(lease!.epoch > before!.epoch, `epoch ${lease!.epoch} after ${before!.epoch}`);
    assert.ok(took < 10_000, `took over in ${took} ms`);
    // The new leader converges what was placed before: scaled to 4, one more instance.
    await api('c').put('/v1/projects/shop/workloads/web', {
      kind: 'Workload',
      metadata: { name: 'web', project: 'shop' },
      spec: { kind: 'vm', image: 'img', replicas: 4, resources: { vcpus: 1, memoryMiB: 256 } },
    });
    const items = await waitFor(
      'four replicas running',
      async () => {
        const all = (await api('c').get('/v1/projects/shop/instances?workload=web')).body.items;
        return all.length === 4 && all.every((i: any) => i.status.phase === 'Running') && all;
      },
      30_000,
    );
    assert.deepEqual(items.map((i: any) => i.metadata.name).sort(), ['web-0', 'web-1', 'web-2', 'web-3']);
    const nodesNow = (await api('c').get('/v1/providers/fra-cloud/nodes')).body.items;
    assert.ok(
      nodesNow.every((n: any) => n.status.state === 'ready'),
      'no node was taken for dead',
    );
    assert.equal(
      nodes.reduce((n, s) => n + s.runtime.size, 0),
      4,
    );
  });
});

describe('the fence and the feed on PostgreSQL', () => {
  test("a controller's transaction commits only while its epoch holds the lease", async () => {
    const db = await testDatabase('postgres');
    const open = (replica: string) =>
      Store.open({ url: db.databaseUrl!, schema: db.databaseSchema!, replica });
    const a = await open('a');
    const b = await open('b');
    try {
      const lease = await acquireLease(a, 'a#1', 60_000);
      // Another process under the same name is another holder: it waits like anyone.
      assert.equal((await acquireLease(a, 'a#2', 60_000)).holder, 'a#1');
      const fencedA = a.fenced({ holder: 'a#1', epoch: () => lease.epoch });
      await fencedA.transaction((tx) => tx.setMeta('x', '1').then(() => tx.appendEvent(ev('ok'))));
      // A takes its time; meanwhile its lease lapses and b takes over.
      let took = false;
      await assert.rejects(
        fencedA.transaction(async (tx) => {
          await tx.appendEvent(ev('late'));
          await a.kysely.updateTable('leases').set({ expires_ms: 0 }).execute();
          const l = await acquireLease(b, 'b#1', 60_000);
          took = l.holder === 'b#1' && l.replica === 'b' && l.epoch === lease.epoch + 1;
        }),
        (err) => isFenced(err),
      );
      assert.ok(took);
      assert.deepEqual(
        (await a.listEvents({})).map((e) => e.name),
        ['ok'],
        'the late write did not commit',
      );
      // Not leading at all: refused before anything is written.
      const notLeading = a.fenced({ holder: 'a#1', epoch: () => undefined });
      await assert.rejects(
        notLeading.transaction((tx) => tx.appendEvent(ev('never'))),
        (err) => isFenced(err),
      );
    } finally {
      await a.close();
      await b.close();
      await db.cleanup();
    }
  });

  test('readers never see commits out of order: a lower seq committed later is not skipped', async () => {
    const db = await testDatabase('postgres');
    const writer = await Store.open({ url: db.databaseUrl!, schema: db.databaseSchema!, replica: 'w' });
    const reader = await Store.open({ url: db.databaseUrl!, schema: db.databaseSchema!, replica: 'r' });
    const follower = new FeedFollower(reader);
    await follower.start();
    const delivered: string[] = [];
    reader.committed.on('event', (e: AuditEvent) => delivered.push(e.name));
    try {
      let release!: () => void;
      const held = new Promise<void>((r) => {
        release = r;
      });
      // The slow transaction takes its seq first, then waits; the quick one commits meanwhile.
      let slowSeq = 0;
      const slow = writer.transaction(async (tx) => {
        slowSeq = (await tx.appendEvent(ev('slow'))).seq;
        await held;
      });
      await waitFor('the slow one wrote', async () => slowSeq > 0);
      const quick = await writer.transaction((tx) => tx.appendEvent(ev('quick')));
      assert.ok(quick.seq > slowSeq);
      const [q] = await reader.listEvents({ name: 'quick' });
      // A reader that saw `quick` resumes after it…
      release();
      await slow;
      const later = await reader.listEvents({ after: q!.position });
      // …and still gets `slow`, which committed after it.
      assert.deepEqual(
        later.map((e) => e.name),
        ['slow'],
      );
      await waitFor('the follower delivered both', async () => delivered.length === 2, 10_000);
      assert.deepEqual(delivered, ['quick', 'slow'], 'in commit order');
    } finally {
      await follower.stop();
      await writer.close();
      await reader.close();
      await db.cleanup();
    }
  });
});

function ev(name: string) {
  return {
    actor: 'test',
    action: 'note',
    kind: 'Note',
    parent: '',
    name,
    provider: null,
    project: null,
    before: null,
    after: null,
  };
}

describe('image content on PostgreSQL', () => {
  test('an upload to one replica is served by another; erased through one, it is gone from every replica', async () => {
    const db = await testDatabase('postgres');
    const dirs = [0, 1].map(() => mkdtempSync(join(tmpdir(), 'continuum-images-')));
    const start = (i: number) =>
      startControlPlane({
        listen: '127.0.0.1:0',
        agentListen: '',
        dataDir: dirs[i]!,
        databaseUrl: db.databaseUrl,
        databaseSchema: db.databaseSchema,
        replicaName: `r${i}`,
      });
    const one = await start(0);
    const two = await start(1);
    try {
      const token = one.adminToken!;
      const content = Buffer.alloc(2.5 * 1024 * 1024, 7); // three chunks
      const digest = createHash('sha256').update(content).digest('hex');
      const admin = http(one.url, token);
      await admin.post('/v1/apply', {
        documents: [
          project('p'),
          {
            kind: 'Image',
            metadata: { name: 'big', project: 'p' },
            spec: { format: 'raw', files: { disk: { sha256: digest } } },
          },
        ],
      });
      assert.equal((await admin.put('/v1/projects/p/images/big/files/disk', content)).status, 200);
      const read = async (cp: ControlPlane) => {
        const res = await fetch(`${cp.url}/v1/projects/p/images/big/files/disk`, {
          headers: { authorization: `Bearer ${token}` },
        });
        return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
      };
      const fromTwo = await read(two);
      assert.equal(fromTwo.status, 200);
      assert.ok(fromTwo.body.equals(content), 'the same bytes');
      const cached = two.ctx.images.pathOf(digest);
      assert.ok(existsSync(cached), 'kept in the second replica’s data directory');
      // Erased through the first: the second's copy goes when asked for, and by its sweep.
      const erased = await one.ctx.images.erase(digest);
      assert.equal(erased?.sha256, digest);
      assert.equal(await two.ctx.images.sweep(), 1);
      assert.ok(!existsSync(cached));
      assert.equal((await read(two)).status, 404);
      assert.equal((await read(one)).status, 404);
    } finally {
      await two.close();
      await one.close();
      await db.cleanup();
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    }
  });
});
