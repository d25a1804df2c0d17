// Live migration of a QEMU VM to another host without shared storage, the way QEMU's
// own storage-migration tests do it: the destination starts the same machine with
// `-incoming defer` over a fresh overlay of the same base image, and exports that
// overlay over NBD; the source mirrors only its overlay into the export
// (`blockdev-mirror`, `sync: top`), migrates memory and device state once the mirror is
// ready, and ends the mirror after the CPUs moved. Both streams run over TLS with a
// pre-shared key made for this one migration (QEMU reads it from a `keys.psk` file).
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { MigrationEndpoint, MigrationSecret, TransferProgress } from '../../protocol/index.js';
import { QmpClient } from './qmp.js';

export type { MigrationEndpoint, MigrationSecret } from '../../protocol/index.js';
export { TRANSFER_PHASES } from '../../protocol/index.js';
/** Progress as QEMU reports it (`query-block-jobs`, `query-migrate`). */
export type MigrationProgress = TransferProgress;
type TransferPhase = TransferProgress['phase'];

const PSK_DIR = 'migration-psk';
/** The TLS credentials object of one migration (a VM received once may be sent on later). */
const tlsId = (secret: MigrationSecret) => `continuum-tls-${secret.identity}`;
const NBD_NODE = 'continuum-migration-target';
const MIRROR_JOB = 'continuum-migration-mirror';
/** The guest drive mirrored (the first `-drive if=virtio`: the instance's disk). */
export const DISK_DEVICE = 'virtio0';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Writes the key where QEMU's tls-creds-psk reads it; readable by this user only. */
async function writePsk(dir: string, secret: MigrationSecret): Promise<string> {
  if (!/^[A-Za-z0-9-]{1,64}$/.test(secret.identity)) throw new Error('invalid migration identity');
  if (!/^[0-9a-f]{64,}$/i.test(secret.keyHex)) throw new Error('invalid migration key');
  const pskDir = join(dir, PSK_DIR);
  await fs.mkdir(pskDir, { recursive: true, mode: 0o700 });
  await fs.writeFile(join(pskDir, 'keys.psk'), `${secret.identity}:${secret.keyHex}\n`, { mode: 0o600 });
  return pskDir;
}

/** Removes the key once QEMU has loaded it (and whatever happens next). */
export async function forgetPsk(dir: string): Promise<void> {
  await fs.rm(join(dir, PSK_DIR), { recursive: true, force: true });
}

/**
 * On the destination, with QEMU started by `-incoming defer`: TLS credentials, the NBD
 * export of the disk (when there is one) and the migration listener.
 */
export async function listenIncoming(
  qmpSocket: string,
  dir: string,
  secret: MigrationSecret,
  listen: { host: string; migrationPort: number; nbdPort?: number },
): Promise<void> {
  const pskDir = await writePsk(dir, secret);
  const q = await QmpClient.connect(qmpSocket);
  const TLS_ID = tlsId(secret);
  try {
    await q.execute('object-add', {
      'qom-type': 'tls-creds-psk',
      id: TLS_ID,
      endpoint: 'server',
      dir: pskDir,
    });
    if (listen.nbdPort !== undefined) {
      await q.execute('nbd-server-start', {
        addr: { type: 'inet', data: { host: listen.host, port: String(listen.nbdPort) } },
        'tls-creds': TLS_ID,
      });
      await q.execute('nbd-server-add', { device: DISK_DEVICE, writable: true });
    }
    await q.execute('migrate-set-parameters', { 'tls-creds': TLS_ID });
    await q.execute('migrate-incoming', { uri: `tcp:${hostPart(listen.host)}:${listen.migrationPort}` });
  } finally {
    q.close();
  }
  // The server side reads the key file at each handshake (GnuTLS): it stays, private to
  // this user, until the migration ends (finishIncoming, or the instance's removal).
}

/** After the incoming migration completed: the NBD export and the key go, the guest runs here. */
export async function finishIncoming(qmpSocket: string, dir: string): Promise<void> {
  const q = await QmpClient.connect(qmpSocket);
  try {
    await q.execute('nbd-server-stop').catch(() => undefined);
    const status = await q.execute('query-status');
    if (status.status !== 'running') await q.execute('cont');
    // The credentials of the stream that brought it go: a later migration makes its own.
    const params = await q.execute('query-migrate-parameters');
    await q.execute('migrate-set-parameters', { 'tls-creds': '' });
    if (params['tls-creds'])
      await q.execute('object-del', { id: params['tls-creds'] }).catch(() => undefined);
  } finally {
    q.close();
    await forgetPsk(dir);
  }
}

/** The state of an incoming migration as the destination sees it. */
export async function incomingStatus(qmpSocket: string): Promise<string> {
  const q = await QmpClient.connect(qmpSocket);
  try {
    return (await q.execute('query-migrate')).status ?? 'none';
  } finally {
    q.close();
  }
}

const hostPart = (host: string) => (host.includes(':') ? `[${host}]` : host);

export interface OutgoingOptions {
  /** Longest pause of the guest QEMU aims for at switch-over (default 100 ms). */
  downtimeLimitMs?: number;
  /** Bytes per second the stream may use (default: no practical limit). */
  maxBandwidth?: number;
  /** Called with progress about every `progressIntervalMs` (default 500 ms). */
  onProgress?: (p: MigrationProgress) => void;
  progressIntervalMs?: number;
  /** Gives up (and cancels) after this long (default 10 min). */
  timeoutMs?: number;
  /** Checked between steps: true cancels the migration. */
  cancelled?: () => boolean;
}

/**
 * On the source: mirrors the disk overlay to the destination's export, migrates memory
 * once the mirror is ready, then completes the mirror. Resolves with the final progress
 * (completed, with downtime and total time); on failure or cancellation everything on
 * the source is undone and the guest keeps running here.
 */
export async function migrateOut(
  qmpSocket: string,
  dir: string,
  secret: MigrationSecret,
  to: MigrationEndpoint,
  opts: OutgoingOptions = {},
): Promise<MigrationProgress> {
  const pskDir = await writePsk(dir, secret);
  const q = await QmpClient.connect(qmpSocket);
  const TLS_ID = tlsId(secret);
  const interval = opts.progressIntervalMs ?? 500;
  const deadline = Date.now() + (opts.timeoutMs ?? 600_000);
  const report = (p: MigrationProgress) => opts.onProgress?.(p);
  let mirroring = false;
  let migrating = false;
  const check = () => {
    if (opts.cancelled?.()) throw new MigrationStopped('cancelled');
    if (Date.now() > deadline) throw new MigrationStopped('timed out');
  };
  try {
    await q.execute('object-add', {
      'qom-type': 'tls-creds-psk',
      id: TLS_ID,
      endpoint: 'client',
      dir: pskDir,
      username: secret.identity,
    });
    await forgetPsk(dir);
    if (to.nbdPort !== undefined) {
      await q.execute('blockdev-add', {
        driver: 'nbd',
        'node-name': NBD_NODE,
        server: { type: 'inet', host: to.host, port: String(to.nbdPort) },
        export: DISK_DEVICE,
        'tls-creds': TLS_ID,
      });
      await q.execute('blockdev-mirror', {
        'job-id': MIRROR_JOB,
        device: DISK_DEVICE,
        target: NBD_NODE,
        sync: 'top',
      });
      mirroring = true;
      for (;;) {
        check();
        const job = ((await q.execute('query-block-jobs')) as any[]).find((j) => j.device === MIRROR_JOB);
        if (!job) throw new MigrationStopped('the disk mirror ended before it was ready');
        report({ phase: 'mirroring', diskDone: job.offset, diskTotal: job.len });
        if (job.ready) break;
        await sleep(Math.min(interval, 100));
      }
    }
    // A guest that dirties memory faster than the stream carries it is slowed down until
    // the rest fits in the downtime allowed (QEMU's auto-converge).
    await q.execute('migrate-set-capabilities', {
      capabilities: [{ capability: 'auto-converge', state: true }],
    });
    await q.execute('migrate-set-parameters', {
      'tls-creds': TLS_ID,
      'downtime-limit': opts.downtimeLimitMs ?? 100,
      'max-bandwidth': opts.maxBandwidth ?? 8 * 1024 ** 3,
    });
    await q.execute('migrate', { uri: `tcp:${hostPart(to.host)}:${to.migrationPort}` });
    migrating = true;
    let last = 0;
    for (;;) {
      check();
      const m = await q.execute('query-migrate');
      const p = progressOf(m);
      if (m.status === 'completed') {
        migrating = false;
        if (mirroring) {
          // The CPUs have moved: the mirror ends without switching the source over.
          await q.execute('block-job-cancel', { device: MIRROR_JOB, force: true });
          await waitJobGone(q, MIRROR_JOB);
          mirroring = false;
          await q.execute('blockdev-del', { 'node-name': NBD_NODE }).catch(() => undefined);
        }
        report(p);
        return p;
      }
      if (m.status === 'failed' || m.status === 'cancelled')
        throw new MigrationStopped(m['error-desc'] ?? `migration ${m.status}`);
      if (Date.now() - last >= interval) {
        report(p);
        last = Date.now();
      }
      await sleep(50);
    }
  } catch (err) {
    // Back to where it was: the guest runs here, nothing of the migration is left.
    if (migrating) await q.execute('migrate_cancel').catch(() => undefined);
    if (migrating) await waitMigrationSettled(q);
    const status = await q.execute('query-status').catch(() => undefined);
    if (status && status.status !== 'running' && status.status !== 'postmigrate')
      await q.execute('cont').catch(() => undefined);
    if (mirroring) {
      await q.execute('block-job-cancel', { device: MIRROR_JOB, force: true }).catch(() => undefined);
      await waitJobGone(q, MIRROR_JOB).catch(() => undefined);
    }
    await q.execute('blockdev-del', { 'node-name': NBD_NODE }).catch(() => undefined);
    throw err;
  } finally {
    await q.execute('migrate-set-parameters', { 'tls-creds': '' }).catch(() => undefined);
    await q.execute('object-del', { id: TLS_ID }).catch(() => undefined);
    q.close();
    await forgetPsk(dir);
  }
}

/** A migration stopped on purpose or by a limit, not by a fault of QEMU's. */
export class MigrationStopped extends Error {}

function progressOf(m: any): MigrationProgress {
  const ram = m.ram ?? {};
  const phase: TransferPhase = m.status === 'completed' ? 'completed' : 'migrating';
  return {
    phase,
    ...(ram.transferred !== undefined ? { ramTransferred: ram.transferred } : {}),
    ...(ram.remaining !== undefined ? { ramRemaining: ram.remaining } : {}),
    ...(ram.total !== undefined ? { ramTotal: ram.total } : {}),
    ...(ram.mbps !== undefined ? { mbps: ram.mbps } : {}),
    ...(ram['dirty-pages-rate'] !== undefined ? { dirtyPagesRate: ram['dirty-pages-rate'] } : {}),
    ...(m.downtime !== undefined ? { downtimeMs: m.downtime } : {}),
    ...(m['total-time'] !== undefined ? { totalTimeMs: m['total-time'] } : {}),
  };
}

async function waitJobGone(q: QmpClient, job: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const jobs = (await q.execute('query-block-jobs')) as any[];
    if (!jobs.some((j) => j.device === job)) return;
    await sleep(50);
  }
  throw new Error(`block job ${job} did not end`);
}

async function waitMigrationSettled(q: QmpClient): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const m = await q.execute('query-migrate').catch(() => ({ status: 'failed' }));
    if (['cancelled', 'failed', 'completed', 'none'].includes(m.status)) return;
    await sleep(50);
  }
}
