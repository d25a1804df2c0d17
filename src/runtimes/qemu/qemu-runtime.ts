// Real virtual machines with QEMU. Everything about an instance lives in its own
// directory (spec, disk overlay, seed, console log, QMP socket, pidfile), and QEMU runs
// daemonized, so VMs outlive the agent and a restarted agent adopts them from disk.
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { allocatePorts, filesUnder, freePort, ID_PATTERN, instanceDir, readMeta } from '../ports.js';
import type {
  InstanceObservation,
  InstanceRuntimeSpec,
  LiveMigration,
  PortMapping,
  Runtime,
} from '../runtime.js';
import { type Accelerator, detectAccelerator } from './accel.js';
import { backupRunningDisk } from './backup.js';
import {
  finishIncoming,
  incomingStatus,
  listenIncoming,
  type MigrationEndpoint,
  type MigrationProgress,
  type MigrationSecret,
  migrateOut,
  type OutgoingOptions,
} from './migration.js';
import { qmp } from './qmp.js';
import { writeSeed } from './seed.js';

const run = promisify(execFile);

export interface QemuRuntimeOptions {
  /** Directory holding one sub-directory per instance. */
  dir: string;
  /** Address that forwarded guest ports listen on (0.0.0.0 to be reachable from others). */
  portBindAddress?: string;
  qemuBinary?: string;
  /** Grace period for an ACPI shutdown before the VM is forced off. */
  stopTimeoutMs?: number;
}

interface Meta {
  spec: InstanceRuntimeSpec;
  ports: PortMapping[];
  /** Set when the agent stopped the VM on purpose, so an exit is not a crash. */
  stopped: boolean;
  startedAt?: string;
  accelerator?: Accelerator;
  /** Started to receive a live migration; not this host's copy until it completes. */
  incoming?: boolean;
  /** Migrated to another host: this copy must never run again. */
  migratedAway?: boolean;
  /** Sending a live migration (a paused QEMU in `postmigrate` then means it completed). */
  outgoing?: boolean;
  /** Made of a cold migration's disk copy, not bound here yet. */
  received?: boolean;
  /** Stopped and its disk sent by a cold migration (`migratedAway` too, until reclaimed). */
  sentCold?: boolean;
}

/** Where a cold migration's disk is written (source) and received (destination). */
const EXPORTED_DISK = 'exported-disk.qcow2';
const RECEIVED_DISK = 'received-disk.qcow2';
/** Where an export's copy of the disk is written until it is sent. */
const SNAPSHOT_DISK = 'snapshot-disk.qcow2';

/** QEMU option values separate keys with commas; a literal comma is written twice. */
const opt = (value: string) => value.replace(/,/g, ',,');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class QemuRuntime implements Runtime, LiveMigration {
  readonly name = 'qemu';
  readonly kinds = ['vm'] as const;
  private readonly bind: string;
  private readonly qemu: string;
  private readonly stopTimeoutMs: number;
  /** Instances this object is sending away now (their monitor is in use). */
  private readonly sending = new Set<string>();

  constructor(private readonly opts: QemuRuntimeOptions) {
    this.bind = opts.portBindAddress ?? '0.0.0.0';
    this.qemu = opts.qemuBinary ?? 'qemu-system-x86_64';
    this.stopTimeoutMs = opts.stopTimeoutMs ?? 10_000;
  }

  private dirOf(id: string): string {
    return instanceDir(this.opts.dir, id);
  }

  private readMeta(id: string): Promise<Meta | undefined> {
    return readMeta<Meta>(this.opts.dir, id);
  }

  private metaWrites = 0;

  private async writeMeta(id: string, meta: Meta): Promise<void> {
    const path = join(this.dirOf(id), 'meta.json');
    // A temporary file of its own per write: two writers never rename each other's.
    const tmp = `${path}.${process.pid}.${++this.metaWrites}.tmp`;
    await fs.writeFile(tmp, JSON.stringify(meta, null, 2));
    await fs.rename(tmp, path);
  }

  /** The QEMU pid of an instance, if that process is alive and really is its QEMU. */
  private async livePid(id: string): Promise<number | undefined> {
    const dir = this.dirOf(id);
    let pid: number;
    try {
      pid = Number((await fs.readFile(join(dir, 'qemu.pid'), 'utf8')).trim());
    } catch {
      return undefined;
    }
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    try {
      const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8');
      const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
      // A zombie (state Z) is dead; a recycled pid runs something else.
      if (/^\d+ \(.*\) Z/.test(stat)) return undefined;
      return cmdline.includes(dir) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  async create(spec: InstanceRuntimeSpec): Promise<void> {
    const old = await this.readMeta(spec.id);
    if (old?.migratedAway) throw new Error(`instance ${spec.id} migrated away from this node`);
    await this.prepare(spec);
  }

  /** Disk overlay, seed and meta of an instance (its disk kept when it exists). */
  private async prepare(spec: InstanceRuntimeSpec, extra: Partial<Meta> = {}): Promise<void> {
    const dir = this.dirOf(spec.id);
    await fs.mkdir(dir, { recursive: true });
    const old = await this.readMeta(spec.id);
    const img = spec.image;
    if (img.format !== 'kernel-initrd') {
      const overlay = join(dir, 'disk.qcow2');
      const exists = await fs.stat(overlay).then(
        () => true,
        () => false,
      );
      if (!exists) {
        if (!img.files.disk) throw new Error('a disk image needs a disk file');
        const args = [
          'create',
          '-q',
          '-f',
          'qcow2',
          '-F',
          img.format,
          '-b',
          img.files.disk,
          `${overlay}.tmp`,
        ];
        if (spec.diskGiB) args.push(`${spec.diskGiB}G`);
        await run('qemu-img', args);
        await fs.rename(`${overlay}.tmp`, overlay);
      }
    } else if (!img.files.kernel) {
      throw new Error('a kernel-initrd image needs a kernel file');
    }
    await writeSeed(dir, spec.id, spec.hostname, spec.userData);
    await this.writeMeta(spec.id, {
      spec,
      ports: old?.ports ?? [],
      stopped: old?.stopped ?? true,
      startedAt: old?.startedAt,
      ...extra,
    });
  }

  private qemuArgs(dir: string, meta: Meta, accel: Accelerator, incoming = false): string[] {
    const s = meta.spec;
    const args = [
      '-name',
      s.hostname,
      '-machine',
      `q35,accel=${accel}`,
      '-cpu',
      accel === 'kvm' ? 'host' : 'max',
      '-smp',
      String(s.vcpus),
      '-m',
      String(s.memoryMiB),
      '-nodefaults',
      '-no-user-config',
      '-display',
      'none',
      '-chardev',
      `file,id=console,path=${opt(join(dir, 'console.log'))},append=on`,
      '-serial',
      'chardev:console',
      '-qmp',
      `unix:${opt(join(dir, 'qmp.sock'))},server=on,wait=off`,
      '-pidfile',
      join(dir, 'qemu.pid'),
      '-daemonize',
    ];
    if (s.image.format === 'kernel-initrd') {
      args.push('-kernel', s.image.files.kernel!);
      if (s.image.files.initrd) args.push('-initrd', s.image.files.initrd);
      args.push('-append', s.image.cmdline ?? 'console=ttyS0');
    } else {
      args.push('-drive', `if=virtio,format=qcow2,file=${opt(join(dir, 'disk.qcow2'))}`);
    }
    args.push('-drive', `if=virtio,format=raw,readonly=on,file=${opt(join(dir, 'seed.iso'))}`);
    const fwd = meta.ports.map((p) => `,hostfwd=${p.protocol}:${this.bind}:${p.host}-:${p.guest}`).join('');
    args.push('-netdev', `user,id=net0${fwd}`, '-device', 'virtio-net-pci,netdev=net0');
    if (incoming) args.push('-incoming', 'defer');
    return args;
  }

  async start(id: string): Promise<InstanceObservation> {
    this.dirOf(id); // refuses an invalid id before anything is read
    const meta = await this.readMeta(id);
    if (!meta) throw new Error(`instance ${id} does not exist on this node`);
    if (meta.migratedAway)
      throw new Error(`instance ${id} migrated away from this node; it never runs here again`);
    if (await this.livePid(id)) return this.inspect(id);
    if (meta.incoming) throw new Error(`instance ${id} was receiving a migration that did not complete`);
    await this.launch(id, meta, false);
    return this.inspect(id);
  }

  /** Starts QEMU for an instance (as a migration's destination: paused, waiting for it). */
  private async launch(id: string, meta: Meta, incoming: boolean): Promise<void> {
    const dir = this.dirOf(id);
    meta.ports = await allocatePorts(this.bind, meta.spec.ports, meta.ports);
    const accel = await detectAccelerator(this.qemu);
    await fs.rm(join(dir, 'qmp.sock'), { force: true });
    await fs.rm(join(dir, 'qemu.pid'), { force: true });
    try {
      await run(this.qemu, this.qemuArgs(dir, meta, accel, incoming), { timeout: 30_000 });
    } catch (err) {
      const stderr = (err as { stderr?: string }).stderr?.trim();
      throw new Error(`QEMU failed to start instance ${id}: ${stderr || (err as Error).message}`);
    }
    meta.stopped = false;
    meta.startedAt = new Date().toISOString();
    meta.accelerator = accel;
    meta.incoming = incoming;
    await this.writeMeta(id, meta);
  }

  /**
   * Destination of a live migration: the instance is created afresh (a new overlay of the
   * same base image, which the source's mirror fills), QEMU starts paused waiting for
   * the stream, and listens on `host` for it (and for the disk mirror, when there is a
   * disk). Returns the ports the source connects to.
   */
  async receiveMigration(
    spec: InstanceRuntimeSpec,
    secret: MigrationSecret,
    host: string,
  ): Promise<MigrationEndpoint> {
    if (await this.livePid(spec.id)) throw new Error(`instance ${spec.id} already runs on this node`);
    await fs.rm(this.dirOf(spec.id), { recursive: true, force: true });
    await this.prepare(spec, { stopped: false });
    const meta = (await this.readMeta(spec.id))!;
    await this.launch(spec.id, meta, true);
    const endpoint: MigrationEndpoint = {
      host,
      migrationPort: await freePort(host),
      ...(spec.image.format !== 'kernel-initrd' ? { nbdPort: await freePort(host) } : {}),
    };
    try {
      await listenIncoming(join(this.dirOf(spec.id), 'qmp.sock'), this.dirOf(spec.id), secret, endpoint);
    } catch (err) {
      await this.delete(spec.id);
      throw err;
    }
    return endpoint;
  }

  /** The incoming migration's state on this node (QEMU's words: active, completed, failed …). */
  async incomingState(id: string): Promise<string> {
    if ((await this.readMeta(id))?.received) return 'completed';
    if (!(await this.livePid(id))) return 'failed';
    return incomingStatus(join(this.dirOf(id), 'qmp.sock'));
  }

  /** The incoming migration completed: the guest runs here from now on. */
  async completeIncoming(id: string): Promise<InstanceObservation> {
    const meta = await this.readMeta(id);
    if (!meta?.incoming) throw new Error(`instance ${id} is not receiving a migration`);
    await finishIncoming(join(this.dirOf(id), 'qmp.sock'), this.dirOf(id));
    meta.incoming = false;
    await this.writeMeta(id, meta);
    return this.inspect(id);
  }

  /**
   * Source of a live migration: sends the running instance to `to`. On completion this
   * copy is marked migrated away (it never starts here again) and its QEMU ends; on
   * failure or cancellation it keeps running here.
   */
  async sendMigration(
    id: string,
    to: MigrationEndpoint,
    secret: MigrationSecret,
    opts: OutgoingOptions = {},
  ): Promise<MigrationProgress> {
    const meta = await this.readMeta(id);
    if (!meta || !(await this.livePid(id))) throw new Error(`instance ${id} is not running on this node`);
    meta.outgoing = true;
    await this.writeMeta(id, meta);
    // QEMU's monitor takes one client at a time: inspect() leaves it to this migration.
    this.sending.add(id);
    let done: MigrationProgress;
    try {
      done = await migrateOut(join(this.dirOf(id), 'qmp.sock'), this.dirOf(id), secret, to, opts);
    } catch (err) {
      meta.outgoing = false;
      await this.writeMeta(id, meta);
      this.sending.delete(id);
      throw err;
    }
    // The guest runs on the destination now, whatever happens here: a failure to end this
    // copy is not the migration's (inspect() ends a copy left outgoing and postmigrate).
    try {
      await this.leave(id, meta);
    } catch {
      // ended by the next inspect()
    } finally {
      this.sending.delete(id);
    }
    return done;
  }

  async exportDisk(id: string): Promise<string | undefined> {
    const meta = await this.readMeta(id);
    if (!meta) throw new Error(`instance ${id} does not exist on this node`);
    if (await this.livePid(id)) throw new Error(`instance ${id} still runs: it is stopped first`);
    if (meta.spec.image.format === 'kernel-initrd') return undefined;
    const dir = this.dirOf(id);
    const out = join(dir, EXPORTED_DISK);
    // One file with what the guest sees: the overlay and its base image merged.
    await run('qemu-img', ['convert', '-q', '-O', 'qcow2', join(dir, 'disk.qcow2'), `${out}.tmp`]);
    await fs.rename(`${out}.tmp`, out);
    return out;
  }

  async files(id: string): Promise<{ name: string; path: string }[]> {
    return filesUnder(this.dirOf(id));
  }

  async snapshotDisk(id: string): Promise<string | undefined> {
    const meta = await this.readMeta(id);
    if (!meta) throw new Error(`instance ${id} does not exist on this node`);
    if (meta.spec.image.format === 'kernel-initrd') return undefined;
    const dir = this.dirOf(id);
    const file = join(dir, SNAPSHOT_DISK);
    await fs.rm(`${file}.tmp`, { force: true });
    if (await this.livePid(id)) await backupRunningDisk(join(dir, 'qmp.sock'), `${file}.tmp`);
    // Stopped: the disk as it was left, the overlay and its base merged.
    else await run('qemu-img', ['convert', '-q', '-O', 'qcow2', join(dir, 'disk.qcow2'), `${file}.tmp`]);
    await fs.rename(`${file}.tmp`, file);
    return file;
  }

  async prepareReceive(id: string): Promise<string> {
    if (await this.livePid(id)) throw new Error(`instance ${id} already runs on this node`);
    const dir = this.dirOf(id);
    await fs.rm(dir, { recursive: true, force: true });
    await fs.mkdir(dir, { recursive: true });
    return join(dir, RECEIVED_DISK);
  }

  async finishReceive(spec: InstanceRuntimeSpec, withDisk: boolean): Promise<void> {
    const dir = this.dirOf(spec.id);
    const received = join(dir, RECEIVED_DISK);
    if (spec.image.format !== 'kernel-initrd') {
      if (!withDisk) throw new Error(`instance ${spec.id} needs a disk and none was received`);
      // Flattened: the instance's disk stands alone, without the base image under it.
      await fs.rename(received, join(dir, 'disk.qcow2'));
    } else await fs.rm(received, { force: true });
    await this.prepare(spec, { stopped: true, received: true });
  }

  async adoptReceived(id: string): Promise<void> {
    const meta = await this.readMeta(id);
    if (!meta?.received) return;
    meta.received = false;
    await this.writeMeta(id, meta);
  }

  async markSent(id: string): Promise<void> {
    const meta = await this.readMeta(id);
    if (!meta) return;
    meta.migratedAway = true;
    meta.sentCold = true;
    meta.stopped = true;
    await this.writeMeta(id, meta);
    await fs.rm(join(this.dirOf(id), EXPORTED_DISK), { force: true });
  }

  async reclaim(id: string): Promise<void> {
    const meta = await this.readMeta(id);
    await fs.rm(join(this.dirOf(id), EXPORTED_DISK), { force: true });
    // A copy that moved live is gone for good; one sent cold is whole and stopped.
    if (!meta?.sentCold) return;
    meta.migratedAway = false;
    meta.sentCold = false;
    await this.writeMeta(id, meta);
  }

  /** The guest runs elsewhere now: this copy is marked so (it never starts here again) and ends. */
  private async leave(id: string, meta: Meta): Promise<void> {
    meta.migratedAway = true;
    meta.outgoing = false;
    meta.stopped = true;
    await this.writeMeta(id, meta);
    await this.stop(id, 0);
  }

  async stop(id: string, timeoutMs = this.stopTimeoutMs): Promise<void> {
    const meta = await this.readMeta(id);
    if (!meta) return;
    meta.stopped = true;
    await this.writeMeta(id, meta);
    const pid = await this.livePid(id);
    if (!pid) return;
    const sock = join(this.dirOf(id), 'qmp.sock');
    if (timeoutMs > 0) {
      await qmp(sock, 'system_powerdown').catch(() => undefined);
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline && (await this.livePid(id))) await sleep(200);
    }
    if (await this.livePid(id)) {
      await qmp(sock, 'quit').catch(() => undefined);
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline && (await this.livePid(id))) await sleep(100);
    }
    if (await this.livePid(id)) process.kill(pid, 'SIGKILL');
  }

  async reboot(id: string): Promise<void> {
    if (!(await this.livePid(id))) throw new Error(`instance ${id} is not running`);
    await qmp(join(this.dirOf(id), 'qmp.sock'), 'system_reset');
  }

  async delete(id: string): Promise<void> {
    await this.stop(id, 0);
    await fs.rm(this.dirOf(id), { recursive: true, force: true });
  }

  async inspect(id: string): Promise<InstanceObservation> {
    const meta = await this.readMeta(id);
    if (!meta) return { id, state: 'absent', ports: [] };
    let pid = await this.livePid(id);
    if (pid && meta.outgoing && !this.sending.has(id)) {
      // The agent that sent it may have died mid-way: QEMU finished the migration alone.
      const status = await qmp(join(this.dirOf(id), 'qmp.sock'), 'query-status').catch(() => undefined);
      if (status?.status === 'postmigrate') {
        await this.leave(id, meta);
        pid = undefined;
      }
    }
    const base = {
      id,
      ports: meta.ports,
      startedAt: meta.startedAt,
      accelerator: meta.accelerator,
      ...(meta.incoming ? { incoming: true as const } : {}),
      ...(meta.migratedAway ? { migratedAway: true as const } : {}),
      ...(meta.received ? { received: true as const } : {}),
    };
    if (pid) return { ...base, state: 'running', pid };
    return { ...base, state: meta.stopped ? 'stopped' : 'crashed' };
  }

  async list(): Promise<string[]> {
    try {
      const entries = await fs.readdir(this.opts.dir, { withFileTypes: true });
      return entries.filter((e) => e.isDirectory() && ID_PATTERN.test(e.name)).map((e) => e.name);
    } catch {
      return [];
    }
  }

  async readConsole(id: string, offset = 0, limit = 64 * 1024): Promise<{ data: string; next: number }> {
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(join(this.dirOf(id), 'console.log'), 'r');
    } catch {
      return { data: '', next: offset };
    }
    try {
      const buf = Buffer.alloc(limit);
      const { bytesRead } = await fh.read(buf, 0, limit, offset);
      return { data: buf.subarray(0, bytesRead).toString('utf8'), next: offset + bytesRead };
    } finally {
      await fh.close();
    }
  }
}
