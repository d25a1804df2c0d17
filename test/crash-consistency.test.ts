// Crash consistency (issue: high availability), on each engine: the control plane is a
// real `continuum server` process, killed with SIGKILL at a random moment while 1,000
// replicas are being placed over simulated agents, then started again on the same data.
// After every restart it must converge to: every workload at exactly its replica count,
// no replica with two live copies, no agent running an instance that is not bound to it,
// and the project's quota usage equal to what runs. Each trial's figures are reported.
// CONTINUUM_CRASH_TRIALS sets the number of trials per engine (default 20).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { runFleet } from '../src/sim/index.js';
import { Store } from '../src/store/index.js';
import { http } from './support/control-plane.js';
import { scratchPostgresDatabase, TEST_ENGINES } from './support/engines.js';
import { type ServerProcess, startServerProcess } from './support/server-process.js';
import { waitFor } from './support/test-image.js';

const TRIALS = Number(process.env.CONTINUUM_CRASH_TRIALS ?? 20);
const WORKLOADS = 10;
const REPLICAS = 100;
const TOTAL = WORKLOADS * REPLICAS;
const MEMORY = 64;

for (const engine of TEST_ENGINES)
  describe(`crash consistency on ${engine}`, () => {
    test(`${TRIALS} trials: kill -9 during the placement of ${TOTAL} replicas, restart, converge`, async (t) => {
      const dir = mkdtempSync(join(tmpdir(), `continuum-crash-${engine}-`));
      const db = engine === 'postgres' ? await scratchPostgresDatabase() : undefined;
      let cp: ServerProcess | undefined;
      let fleet: Awaited<ReturnType<typeof runFleet>> | undefined;
      // The test reads the store itself (a second connection; SQLite's WAL allows readers).
      let store: Store | undefined;
      try {
        cp = await startServerProcess({ dataDir: join(dir, 'cp'), ...(db ? { databaseUrl: db.url } : {}) });
        const token = cp.adminToken();
        store = await Store.open({ url: db?.url ?? join(dir, 'cp', 'continuum.db'), replica: 'test' });
        fleet = await runFleet({
          api: cp.url,
          token,
          providers: 3,
          nodes: 20,
          seed: 21,
          heartbeatIntervalMs: 2000,
        });
        const api = () => http(cp!.url, token);
        await waitFor(
          'twenty nodes ready',
          async () => (await store!.count('nodes', { state: 'ready' })) === 20,
        );
        const digest = createHash('sha256').update('disk').digest('hex');
        const setup = await api().post('/v1/apply', {
          documents: [
            { kind: 'Project', metadata: { name: 'crash' }, spec: { displayName: 'crash' } },
            {
              kind: 'Image',
              metadata: { name: 'img', project: 'crash' },
              spec: { format: 'raw', files: { disk: { sha256: digest } } },
            },
          ],
        });
        assert.equal(setup.status, 200, setup.text);
        assert.equal(
          (await api().put('/v1/projects/crash/images/img/files/disk', Buffer.from('disk'))).status,
          200,
        );
        const instances = () => store!.listInstances({ project: 'crash' });
        /** What the agents hold: uid → the nodes holding it. */
        const held = () => {
          const m = new Map<string, string[]>();
          for (const n of fleet!.nodes)
            for (const uid of n.runtime.ids()) m.set(uid, [...(m.get(uid) ?? []), `${n.provider}/${n.name}`]);
          return m;
        };
        const apply = async (names: string[]) => {
          const applied = await api().post('/v1/apply', {
            documents: names.map((name) => ({
              kind: 'Workload',
              metadata: { name, project: 'crash' },
              spec: {
                kind: 'vm',
                image: 'img',
                replicas: REPLICAS,
                resources: { vcpus: 1, memoryMiB: MEMORY },
              },
            })),
          });
          assert.equal(applied.status, 200, applied.text);
        };
        const removeAll = async (names: string[], what: string) => {
          for (const name of names)
            assert.equal((await api().del(`/v1/projects/crash/workloads/${name}`)).status, 200);
          await waitFor(
            `${what}: cleaned up`,
            async () => (await instances()).length === 0 && held().size === 0,
            120_000,
          );
        };
        // How long placing them takes here, undisturbed: the kills fall within it.
        const calibration = Array.from({ length: WORKLOADS }, (_, i) => `c-w${i}`);
        const started = Date.now();
        await apply(calibration);
        await waitFor('calibration placed', async () => (await instances()).length === TOTAL, 120_000);
        const window = Date.now() - started;
        await removeAll(calibration, 'calibration');
        t.diagnostic(`placing ${TOTAL} replicas took ${window} ms undisturbed: kills fall in 0–${window} ms`);
        const figures: string[] = [];
        for (let trial = 1; trial <= TRIALS; trial++) {
          const names = Array.from({ length: WORKLOADS }, (_, i) => `t${trial}-w${i}`);
          await apply(names);
          const delay = Math.floor(Math.random() * window);
          await new Promise((r) => setTimeout(r, delay));
          await cp.kill();
          const atKill = (await instances()).length;
          const killedAt = Date.now();
          cp = await cp.restart();
          const restartMs = Date.now() - killedAt;
          await waitFor(
            `trial ${trial}: ${TOTAL} replicas running, each once, on the agents`,
            async () => {
              const rows = await instances();
              if (rows.length !== TOTAL || rows.some((r) => r.status.phase !== 'Running')) return false;
              const h = held();
              return h.size === TOTAL && rows.every((r) => h.get(r.uid)?.length === 1);
            },
            120_000,
          );
          const convergedMs = Date.now() - killedAt;
          const rows = await instances();
          const h = held();
          for (const name of names) {
            const mine = rows.filter((r) => r.workload === name);
            assert.deepEqual(
              mine.map((r) => r.ordinal).sort((x, y) => x - y),
              Array.from({ length: REPLICAS }, (_, i) => i),
              `trial ${trial}: ${name} has each replica once`,
            );
          }
          for (const r of rows)
            assert.deepEqual(
              h.get(r.uid),
              [`${r.provider}/${r.node}`],
              `trial ${trial}: ${r.name} runs once, where bound`,
            );
          const usage: unknown = (await store!.get('projects', '', 'crash'))?.status.usage;
          assert.deepEqual(
            usage,
            { vcpus: TOTAL, memoryMiB: TOTAL * MEMORY, instances: TOTAL },
            `trial ${trial}: usage equals what runs`,
          );
          figures.push(
            `trial ${trial}: killed ${delay} ms after the request with ${atKill}/${TOTAL} placed; restarted in ${restartMs} ms; converged ${convergedMs} ms after the kill`,
          );
          t.diagnostic(figures[figures.length - 1]!);
          // Room for the next trial: its workloads go, and every copy with them.
          await removeAll(names, `trial ${trial}`);
        }
        assert.equal(figures.length, TRIALS);
      } finally {
        await fleet?.stop();
        await cp?.kill().catch(() => undefined);
        await store?.close();
        await db?.drop();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
