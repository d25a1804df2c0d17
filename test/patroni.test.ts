// PostgreSQL failover under the control plane (issue: high availability): a real
// Patroni cluster — etcd, a primary and a synchronous standby, Debian's packages, all on
// loopback — behind HAProxy, which routes to whichever node Patroni's REST API calls
// the primary (the set-up docs/operations.md describes). The primary is killed with
// SIGKILL while the API takes writes; Patroni promotes the standby; the control plane
// reconnects by itself; every write it acknowledged is still there.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { type ControlPlane, startControlPlane } from '../src/control-plane/index.js';
import { http } from './support/control-plane.js';
import { provider } from './support/fixtures.js';
import { freePort } from './support/processes.js';
import { waitFor } from './support/test-image.js';

const PG_BIN = (() => {
  const versions = execFileSync('ls', ['/usr/lib/postgresql']).toString().trim().split('\n');
  return `/usr/lib/postgresql/${versions.sort().at(-1)}/bin`;
})();

function uidOf(user: string): { uid: number; gid: number } {
  return {
    uid: Number(execFileSync('id', ['-u', user]).toString()),
    gid: Number(execFileSync('id', ['-g', user]).toString()),
  };
}

/** Starts a process whose output is kept for the failure message. */
function run(cmd: string, args: string[], opts: { uid?: number; gid?: number } = {}) {
  const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => {
    out = (out + d).slice(-20_000);
  });
  child.stderr!.on('data', (d) => {
    out = (out + d).slice(-20_000);
  });
  return { child, output: () => out };
}

async function status(url: string): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.body?.cancel();
    return res.status;
  } catch {
    return 0;
  }
}

function kill9(child: ChildProcess | undefined): void {
  try {
    if (child?.pid) process.kill(child.pid, 'SIGKILL');
  } catch {}
}

test('Patroni fails the primary over to the synchronous standby: the control plane reconnects and loses no acknowledged write', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'continuum-patroni-'));
  const postgresUser = uidOf('postgres');
  chownSync(dir, postgresUser.uid, postgresUser.gid);
  const port = { etcd: await freePort(), peer: await freePort(), haproxy: await freePort() };
  const nodes = [1, 2].map((i) => ({ name: `pg${i}`, i }));
  const pgPort = new Map<string, number>();
  const restPort = new Map<string, number>();
  for (const n of nodes) {
    pgPort.set(n.name, await freePort());
    restPort.set(n.name, await freePort());
  }
  const procs: ReturnType<typeof run>[] = [];
  const patroni = new Map<string, ReturnType<typeof run>>();
  let cp: ControlPlane | undefined;
  const scope = `continuum-${randomBytes(4).toString('hex')}`;
  try {
    const etcd = run('etcd', [
      '--name',
      'e1',
      '--data-dir',
      join(dir, 'etcd'),
      '--listen-client-urls',
      `http://127.0.0.1:${port.etcd}`,
      '--advertise-client-urls',
      `http://127.0.0.1:${port.etcd}`,
      '--listen-peer-urls',
      `http://127.0.0.1:${port.peer}`,
      '--initial-advertise-peer-urls',
      `http://127.0.0.1:${port.peer}`,
      '--initial-cluster',
      `e1=http://127.0.0.1:${port.peer}`,
    ]);
    procs.push(etcd);
    await waitFor('etcd', async () => (await status(`http://127.0.0.1:${port.etcd}/health`)) === 200, 30_000);

    const startNode = (name: string) => {
      const home = join(dir, name);
      mkdirSync(home, { recursive: true });
      chownSync(home, postgresUser.uid, postgresUser.gid);
      const config = join(home, 'patroni.yml');
      writeFileSync(
        config,
        `scope: ${scope}
name: ${name}
restapi:
  listen: 127.0.0.1:${restPort.get(name)}
  connect_address: 127.0.0.1:${restPort.get(name)}
etcd3:
  hosts: 127.0.0.1:${port.etcd}
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 2
    retry_timeout: 4
    synchronous_mode: true
    postgresql:
      use_pg_rewind: false
      parameters:
        max_connections: 100
        wal_level: replica
        hot_standby: "on"
        max_wal_senders: 5
        max_replication_slots: 5
  initdb:
    - encoding: UTF8
  pg_hba:
    - local all all trust
    - host replication replicator 127.0.0.1/32 trust
    - host all all 127.0.0.1/32 trust
postgresql:
  listen: 127.0.0.1:${pgPort.get(name)}
  connect_address: 127.0.0.1:${pgPort.get(name)}
  data_dir: ${join(home, 'data')}
  bin_dir: ${PG_BIN}
  pgpass: ${join(home, 'pgpass')}
  authentication:
    superuser:
      username: postgres
      password: secret
    replication:
      username: replicator
      password: secret
  parameters:
    unix_socket_directories: ${home}
`,
      );
      chownSync(config, postgresUser.uid, postgresUser.gid);
      const p = run('patroni', [config], postgresUser);
      procs.push(p);
      patroni.set(name, p);
      return p;
    };
    const rest = (name: string, path: string) => status(`http://127.0.0.1:${restPort.get(name)}${path}`);
    startNode('pg1');
    await waitFor('pg1 is the primary', async () => (await rest('pg1', '/primary')) === 200, 90_000).catch(
      (err) => {
        throw new Error(`${(err as Error).message}\n${patroni.get('pg1')!.output()}`);
      },
    );
    startNode('pg2');
    await waitFor(
      'pg2 is the synchronous standby',
      async () => (await rest('pg2', '/sync')) === 200,
      90_000,
    ).catch((err) => {
      throw new Error(`${(err as Error).message}\n${patroni.get('pg2')!.output()}`);
    });

    // HAProxy sends connections to the node whose Patroni says it is the primary.
    const haproxyCfg = join(dir, 'haproxy.cfg');
    writeFileSync(
      haproxyCfg,
      `global
  maxconn 200
defaults
  mode tcp
  timeout connect 2s
  timeout client 30m
  timeout server 30m
listen postgres_primary
  bind 127.0.0.1:${port.haproxy}
  option httpchk OPTIONS /primary
  http-check expect status 200
  default-server inter 1s fall 2 rise 1 on-marked-down shutdown-sessions
${nodes.map((n) => `  server ${n.name} 127.0.0.1:${pgPort.get(n.name)} maxconn 100 check port ${restPort.get(n.name)}`).join('\n')}
`,
    );
    const haproxy = run('haproxy', ['-f', haproxyCfg, '-db']);
    procs.push(haproxy);
    // HAProxy starts every server as up: the standby is marked down after two checks.
    await new Promise((r) => setTimeout(r, 3000));
    const databaseUrl = `postgres://postgres:secret@127.0.0.1:${port.haproxy}/postgres`;
    await waitFor(
      'PostgreSQL through HAProxy',
      async () => {
        const c = new pg.Client({ connectionString: databaseUrl });
        try {
          await c.connect();
          const { rows } = await c.query('select pg_is_in_recovery() as standby');
          return rows[0].standby === false;
        } finally {
          await c.end().catch(() => undefined);
        }
      },
      30_000,
    );

    cp = await startControlPlane({
      listen: '127.0.0.1:0',
      agentListen: '',
      dataDir: join(dir, 'cp'),
      databaseUrl,
      logLevel: 'silent',
    });
    const api = http(cp.url, cp.adminToken!);
    const acknowledged: string[] = [];
    let failed = 0;
    let n = 0;
    const write = async () => {
      const name = `ack-${n++}`;
      const res = await api.post('/v1/providers', provider(name)).catch(() => undefined);
      if (res?.status === 201) acknowledged.push(name);
      else failed++;
    };
    for (let i = 0; i < 10; i++) await write();
    assert.equal(acknowledged.length, 10);

    // The primary dies: Patroni and its PostgreSQL, without a word.
    const postmaster = Number(
      readFileSync(join(dir, 'pg1', 'data', 'postmaster.pid'), 'utf8').split('\n')[0],
    );
    const killedAt = Date.now();
    kill9(patroni.get('pg1')!.child);
    process.kill(postmaster, 'SIGKILL');
    await waitFor('pg2 is promoted', async () => (await rest('pg2', '/primary')) === 200, 90_000);
    const promotedMs = Date.now() - killedAt;
    // Writes go on until ten more are acknowledged by the new primary.
    const before = acknowledged.length;
    const deadline = Date.now() + 90_000;
    while (acknowledged.length < before + 10 && Date.now() < deadline) {
      await write();
      if (acknowledged.length === before) await new Promise((r) => setTimeout(r, 250));
    }
    const recoveredMs = Date.now() - killedAt;
    t.diagnostic(
      `standby promoted ${promotedMs} ms after the kill; writes acknowledged again ${recoveredMs} ms after it; ${failed} refused meanwhile`,
    );
    assert.equal(acknowledged.length, before + 10, 'the control plane writes again without a restart');

    // Every acknowledged write is on the new primary.
    const listed = new Set(
      ((await api.get('/v1/providers?limit=1000')).body.items as { metadata: { name: string } }[]).map(
        (p) => p.metadata.name,
      ),
    );
    const lost = acknowledged.filter((name) => !listed.has(name));
    assert.deepEqual(lost, [], 'no acknowledged write was lost');
    const direct = new pg.Client({
      connectionString: `postgres://postgres:secret@127.0.0.1:${pgPort.get('pg2')}/postgres`,
    });
    await direct.connect();
    const { rows } = await direct.query("select count(*)::int as n from providers where name like 'ack-%'");
    await direct.end();
    assert.ok(rows[0].n >= acknowledged.length);
    // The control plane leads again on the new primary (its lease renewed there).
    await waitFor('the control plane leads', async () => cp!.leadership.leading, 30_000);
  } finally {
    await cp?.close().catch(() => undefined);
    for (const p of procs.reverse()) kill9(p.child);
    // Patroni's PostgreSQL processes outlive it when it is killed.
    try {
      execFileSync('pkill', ['-9', '-f', dir]);
    } catch {}
    await new Promise((r) => setTimeout(r, 500));
    rmSync(dir, { recursive: true, force: true });
  }
});
