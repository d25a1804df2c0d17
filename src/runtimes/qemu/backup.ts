// A crash-consistent copy of a running VM's disk, the way QEMU makes backups: a full
// `blockdev-backup` of the guest drive into a new qcow2 file. The copy is the disk as it
// was at the instant the job started (writes the guest makes meanwhile are copied
// before they land), with the backing chain flattened: a file that stands alone.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { DISK_DEVICE } from './migration.js';
import { QmpClient } from './qmp.js';

const run = promisify(execFile);
const BACKUP_NODE = 'continuum-backup-target';
const BACKUP_JOB = 'continuum-backup';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Writes the guest drive of the VM behind `qmpSocket` to `target` (a new qcow2 file). */
export async function backupRunningDisk(qmpSocket: string, target: string): Promise<void> {
  const q = await QmpClient.connect(qmpSocket);
  let added = false;
  try {
    const drive = ((await q.execute('query-block')) as any[]).find((b) => b.device === DISK_DEVICE);
    const size = drive?.inserted?.image?.['virtual-size'];
    if (typeof size !== 'number') throw new Error(`the VM has no ${DISK_DEVICE} disk to copy`);
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', target, String(size)]);
    await q.execute('blockdev-add', {
      driver: 'qcow2',
      'node-name': BACKUP_NODE,
      file: { driver: 'file', filename: target },
    });
    added = true;
    // Kept after it ends (auto-dismiss off): a failed job says why before it goes.
    await q.execute('blockdev-backup', {
      'job-id': BACKUP_JOB,
      device: DISK_DEVICE,
      target: BACKUP_NODE,
      sync: 'full',
      'auto-dismiss': false,
    });
    for (;;) {
      const job = ((await q.execute('query-jobs')) as any[]).find((j) => j.id === BACKUP_JOB);
      if (!job) throw new Error('the disk backup job vanished');
      if (job.status === 'concluded') {
        await q.execute('job-dismiss', { id: BACKUP_JOB });
        if (job.error) throw new Error(`the disk backup failed: ${job.error}`);
        break;
      }
      await sleep(100);
    }
  } finally {
    if (added) await q.execute('blockdev-del', { 'node-name': BACKUP_NODE }).catch(() => undefined);
    q.close();
  }
}
