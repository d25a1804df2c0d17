// Takeover (issue: high availability): two `continuum server` processes on one
// PostgreSQL database, simulated agents spread over both; the leader is killed with
// SIGKILL while 1,000 replicas are being placed. The other replica must lead within 15 s
// with the default lease settings, and placement must end with every workload at its
// replica count: no replica placed twice, none lost, no instance running twice.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { runFleet } from '../src/sim/index.js';
import { http } from './support/control-plane.js';
import { scratchPostgresDatabase } from './support/engines.js';
import { type ServerProcess, startServerProcess } from './support/server-process.js';
import { waitFor } from './support/test-image.js';

const WORKLOADS = 20;
const REPLICAS = 50;

test('kill -9 of the leader during the placement of 1,000 replicas: a new leader within 15 s, nothing twice, nothing lost', async (t) => {
  const db = await scratchPostgresDatabase();
  const dir = mkdtempSync(join(tmpdir(), 'continuum-takeover-'));
  const procs: ServerProcess[] = [];
  let fleet: Awaited<ReturnType<typeof runFleet>> | undefined;
  const sql = new pg.Client({ connectionString: db.url });
  try {
    const a = await startServerProcess({ dataDir: join(dir, 'a'), databaseUrl: db.url, name: 'a' });
    procs.push(a);
    const b = await startServerProcess({
      dataDir: join(dir, 'b'),
      databaseUrl: db.url,
      name: 'b',
      caKeyFile: join(dir, 'a', 'ca.key'),
    });
    procs.push(b);
    await sql.connect();
    const token = a.adminToken();
    const api = http(b.url, token);
    const leaderOf = async () => (await api.get('/v1/replicas')).body.leader?.name as string | undefined;
    assert.equal(await leaderOf(), 'a');

    fleet = await runFleet({
      api: b.url,
      token,
      providers: 4,
      nodes: 40,
      seed: 11,
      gateways: [a.gateway, b.gateway],
      heartbeatIntervalMs: 2000,
    });
    await waitFor(
      'forty nodes ready',
      async () => {
        const { rows } = await sql.query("select count(*)::int as n from nodes where state = 'ready'");
        return rows[0].n === 40;
      },
      60_000,
    );
    const digest = createHash('sha256').update('disk').digest('hex');
    const setup = await api.post('/v1/apply', {
      documents: [
        { kind: 'Project', metadata: { name: 'load' }, spec: { displayName: 'load' } },
        {
          kind: 'Image',
          metadata: { name: 'img', project: 'load' },
          spec: { format: 'raw', files: { disk: { sha256: digest } } },
        },
      ],
    });
    assert.equal(setup.status, 200, setup.text);
    assert.equal((await api.put('/v1/projects/load/images/img/files/disk', Buffer.from('disk'))).status, 200);

    const documents = Array.from({ length: WORKLOADS }, (_, i) => ({
      kind: 'Workload',
      metadata: { name: `w${i}`, project: 'load' },
      spec: { kind: 'vm', image: 'img', replicas: REPLICAS, resources: { vcpus: 1, memoryMiB: 128 } },
    }));
    const applied = await api.post('/v1/apply', { documents });
    assert.equal(applied.status, 200, applied.text);
    // Killed mid-way: some replicas placed, most not yet.
    const placedBefore = await waitFor(
      'placement under way',
      async () => {
        const { rows } = await sql.query("select count(*)::int as n from instances where project = 'load'");
        return rows[0].n >= 50 && rows[0].n;
      },
      60_000,
    );
    const killedAt = Date.now();
    await a.kill();
    await waitFor('b leads', async () => (await leaderOf()) === 'b', 30_000);
    const takeoverMs = Date.now() - killedAt;
    const total = WORKLOADS * REPLICAS;
    await waitFor(
      `${total} replicas running`,
      async () => {
        const { rows } = await sql.query(
          "select count(*)::int as n, count(*) filter (where phase = 'Running')::int as running from instances where project = 'load'",
        );
        return rows[0].n === total && rows[0].running === total;
      },
      180_000,
    );
    const convergedMs = Date.now() - killedAt;
    t.diagnostic(
      `placed before the kill: ${placedBefore}; new leader after ${takeoverMs} ms; all ${total} running ${convergedMs} ms after the kill`,
    );
    assert.ok(takeoverMs <= 15_000, `takeover took ${takeoverMs} ms`);

    // Every workload has exactly its replicas, ordinals 0..49 once each.
    const { rows: per } = await sql.query(
      "select workload, count(*)::int as n, count(distinct ordinal)::int as ordinals, min(ordinal) as lo, max(ordinal) as hi from instances where project = 'load' group by workload",
    );
    assert.equal(per.length, WORKLOADS);
    for (const r of per)
      assert.deepEqual([r.n, r.ordinals, r.lo, r.hi], [REPLICAS, REPLICAS, 0, REPLICAS - 1]);
    // No instance was created twice or moved: one 'create' event each, no replacement.
    const { rows: events } = await sql.query(
      "select action, count(*)::int as n, count(distinct name)::int as names from events where kind = 'Instance' and parent = 'load' group by action",
    );
    assert.deepEqual(
      events.map((e) => [e.action, e.n, e.names]),
      [['create', total, total]],
    );
    // And no agent runs a copy twice or one that is not bound to it.
    const bound = new Map(
      (await sql.query("select uid, provider, node from instances where project = 'load'")).rows.map((r) => [
        r.uid,
        `${r.provider}/${r.node}`,
      ]),
    );
    let copies = 0;
    for (const n of fleet.nodes)
      for (const uid of n.runtime.ids()) {
        copies++;
        assert.equal(bound.get(uid), `${n.provider}/${n.name}`, `instance ${uid} runs where it is bound`);
      }
    assert.equal(copies, total);
    // Usage counted once.
    assert.deepEqual((await api.get('/v1/projects/load')).body.status.usage, {
      vcpus: total,
      memoryMiB: total * 128,
      instances: total,
    });
  } finally {
    await fleet?.stop();
    for (const p of procs) await p.kill().catch(() => undefined);
    await sql.end().catch(() => undefined);
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  }
});
