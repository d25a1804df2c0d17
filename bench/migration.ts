// Live-migration benchmark: a real 256 MiB guest (the project's test image, TCG here)
// that keeps rewriting 32 MiB of random data, migrated between two QEMU runtimes on this
// machine over TLS with a one-time key, several times back and forth. Reports QEMU's
// own figures — downtime, total time, bytes sent — and, in the same run, an idle guest
// of the same size for comparison.
//
//   npm run bench:migration                  # 3 migrations of each guest
//   npm run bench:migration -- --runs 5 --memory 512
//
// Each guest goes both ways of reaching the destination, in turn: direct, and through the
// control plane's relay (a real gateway and two enrolled agents, bench/relay-pair.ts).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type MigrationProgress, QemuRuntime } from '../src/runtimes/index.js';
import { testImage, waitFor } from '../test/support/test-image.js';
import { startRelayPair } from './relay-pair.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    memory: { type: 'string', default: '256' },
  },
});
const RUNS = Number(values.runs);
const MEMORY = Number(values.memory);
if (!Number.isInteger(RUNS) || RUNS < 1)
  throw new Error(`--runs must be a whole number ≥ 1, not '${values.runs}'`);
if (!Number.isInteger(MEMORY) || MEMORY < 128)
  throw new Error(`--memory must be MiB ≥ 128, not '${values.memory}'`);

/** Rewrites 32 MiB of random data without end: fresh, non-zero pages all the time. */
const DIRTIER = `#!/bin/sh
head -c 33554432 /dev/urandom > /tmp/random
( while true; do cp /tmp/random /tmp/copy; done ) > /dev/null 2>&1 &
echo dirtier started
`;

interface Figures {
  downtimeMs: number;
  totalTimeMs: number;
  sentMiB: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

type Path = 'direct' | 'relay';
const PATHS: Path[] = ['direct', 'relay'];
const relay = await startRelayPair();

/** RUNS migrations of a fresh guest on each path, in turn (direct, relay, direct …). */
async function migrations(label: string, userData: string | undefined): Promise<Record<Path, Figures[]>> {
  const image = testImage();
  const dir = mkdtempSync(join(tmpdir(), 'continuum-bench-migration-'));
  const nodes = [
    new QemuRuntime({ dir: join(dir, 'a'), portBindAddress: '127.0.0.1', stopTimeoutMs: 1000 }),
    new QemuRuntime({ dir: join(dir, 'b'), portBindAddress: '127.0.0.1', stopTimeoutMs: 1000 }),
  ];
  const id = `bench-${label}`;
  const spec = {
    id,
    hostname: id,
    vcpus: 1,
    memoryMiB: MEMORY,
    image: {
      format: 'kernel-initrd' as const,
      files: { kernel: image.kernel, initrd: image.initrd },
      cmdline: image.cmdline,
    },
    ...(userData ? { userData } : {}),
    ports: [],
  };
  const out: Record<Path, Figures[]> = { direct: [], relay: [] };
  try {
    await nodes[0]!.create(spec);
    await nodes[0]!.start(id);
    await waitFor(
      'the guest ready',
      async () => (await nodes[0]!.readConsole(id, 0, 1 << 24)).data.includes('continuum-counter 5'),
      180_000,
    );
    for (let i = 0; i < RUNS * PATHS.length; i++) {
      const path = PATHS[i % PATHS.length]!;
      const [from, to] = i % 2 === 0 ? [nodes[0]!, nodes[1]!] : [nodes[1]!, nodes[0]!];
      const secret = { identity: 'bench', keyHex: randomBytes(32).toString('hex') };
      const endpoint = await to.receiveMigration(spec, secret, '127.0.0.1');
      const relayed = path === 'relay' ? await relay.through(endpoint.migrationPort) : undefined;
      let last: MigrationProgress | undefined;
      const done = await from
        .sendMigration(id, relayed ? { ...endpoint, migrationPort: relayed.port } : endpoint, secret, {
          onProgress: (p) => (last = p),
        })
        .finally(() => relayed?.close());
      // As the control plane does: the destination has read everything before it runs.
      await waitFor('the destination completed', async () => (await to.incomingState(id)) === 'completed');
      await to.completeIncoming(id);
      await from.delete(id);
      const sent = done.ramTransferred ?? last?.ramTransferred ?? 0;
      const f = {
        downtimeMs: done.downtimeMs ?? Number.NaN,
        totalTimeMs: done.totalTimeMs ?? Number.NaN,
        sentMiB: sent / 2 ** 20,
      };
      process.stderr.write(
        `[bench] ${label}, ${path} #${Math.floor(i / PATHS.length) + 1}: downtime ${f.downtimeMs} ms, total ${f.totalTimeMs} ms, ${f.sentMiB.toFixed(0)} MiB sent\n`,
      );
      out[path].push(f);
    }
  } finally {
    for (const n of nodes) for (const i of await n.list()) await n.delete(i);
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

let idle: Record<Path, Figures[]>;
let busy: Record<Path, Figures[]>;
try {
  idle = await migrations('idle', undefined);
  busy = await migrations('dirtying', DIRTIER);
} finally {
  await relay.close();
}
const med = (fs: Figures[], k: keyof Figures) => median(fs.map((f) => f[k]));
const row = (label: string, fs: Figures[]) =>
  `${label.padEnd(42)} ${`${med(fs, 'downtimeMs')} ms`.padStart(10)} ${`${(med(fs, 'totalTimeMs') / 1000).toFixed(2)} s`.padStart(10)} ${`${med(fs, 'sentMiB').toFixed(0)} MiB`.padStart(10)}`;
const downtime = med(busy.direct, 'downtimeMs');
const relayRatio = med(busy.relay, 'totalTimeMs') / med(busy.direct, 'totalTimeMs');
process.stdout.write(
  `live migration benchmark: ${MEMORY} MiB guest, TCG, loopback, TLS (PSK); median of ${RUNS} runs each\n` +
    `${'guest, path'.padEnd(42)} ${'downtime'.padStart(10)} ${'total'.padStart(10)} ${'sent'.padStart(10)}\n` +
    `${row('idle, direct', idle.direct)}\n` +
    `${row('idle, relay', idle.relay)}\n` +
    `${row('rewriting 32 MiB of random data, direct', busy.direct)}\n` +
    `${row('rewriting 32 MiB of random data, relay', busy.relay)}\n` +
    `downtime, dirtying guest, direct: ${downtime} ms   [<= 100 ms: ${downtime <= 100 ? 'met' : 'NOT met'}]\n` +
    `total time, dirtying guest, relay / direct: ${relayRatio.toFixed(1)}×   [<= 2×: ${relayRatio <= 2 ? 'met' : 'NOT met'}]\n` +
    `total time, dirtying / idle (direct): ${(med(busy.direct, 'totalTimeMs') / med(idle.direct, 'totalTimeMs')).toFixed(1)}×\n`,
);
