// OCI containers with runc: each instance is a bundle (its image unpacked by umoci, a
// config.json with the workload's command, environment and CPU/memory limits in
// cgroups) and one small supervisor — a shell loop, detached from the agent — that runs
// it, appends its output to a log, records each exit code and restarts it by the
// restart policy. Each container has a network namespace of its own, joined to the host
// by a veth pair on a /30 of 10.241.0.0/16; its ports are forwarded from the host by
// socat processes the supervisor keeps. Containers, supervisors and forwarders outlive
// an agent restart; a fresh runtime object adopts them from their directories.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, promises as fs, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { allocatePorts, filesUnder, ID_PATTERN, instanceDir, readMeta } from '../ports.js';
import type { InstanceObservation, InstanceRuntimeSpec, PortMapping, Runtime } from '../runtime.js';

const run = promisify(execFile);
const RESTART_POLICIES = ['always', 'on-failure', 'never'] as const;
export type RestartPolicy = (typeof RESTART_POLICIES)[number];

export interface RuncRuntimeOptions {
  /** Directory holding one sub-directory per container. */
  dir: string;
  runc?: string;
  umoci?: string;
  /** Grace period between SIGTERM and SIGKILL when a container is stopped. */
  stopTimeoutMs?: number;
  /** Address that forwarded ports listen on (0.0.0.0 to be reachable from others). */
  portBindAddress?: string;
}

/** A container's network: its namespace, the host's veth end, and the /30 they share. */
interface Net {
  ns: string;
  hostIf: string;
  hostIp: string;
  ctrIp: string;
}

interface Meta {
  spec: InstanceRuntimeSpec;
  net: Net;
  ports: PortMapping[];
}

const NETNS_DIR = '/var/run/netns';
/** /30 blocks of 10.241.0.0/16: 16,384 containers per host. */
const BLOCKS = 16_384;

/** The network of block `i`: names from the block, so that they are unique on the host. */
function netOf(i: number): Net {
  const base = i * 4;
  const ip = (n: number) => `10.241.${(base + n) >> 8}.${(base + n) & 255}`;
  const tag = i.toString(16).padStart(4, '0');
  return { ns: `ctr-${tag}`, hostIf: `ctr${tag}h`, hostIp: ip(1), ctrIp: ip(2) };
}

/**
 * The supervisor: runs the container in the foreground, appends its output to
 * output.log, writes `exit` (code and time) and `restarts`, and runs it again unless
 * the file `stop` exists or the policy says no. SIGTERM to the supervisor stops it and
 * its container. Written into each container's directory at create.
 */
const SUPERVISOR = `#!/bin/sh
# Continuum container supervisor: $1 runc binary, $2 container id, $3 restart policy.
RUNC="$1"; ID="$2"; POLICY="$3"
cd "$(dirname "$0")" || exit 1
echo $$ > supervisor.pid
child=
stop_container() {
  touch stop
  "$RUNC" kill "$ID" TERM 2>/dev/null
  # A shell as PID 1 ignores SIGTERM: everything in the container gets SIGKILL after 5 s.
  ( sleep 5; "$RUNC" kill --all "$ID" KILL 2>/dev/null ) &
}
trap stop_container TERM INT
trap '' HUP
# The forwarded ports (lines "protocol host-address host-port container-address port"),
# kept while the supervisor lives.
forwarders=
if [ -s forwards ]; then
  while read -r proto bind hport cip gport; do
    if [ "$proto" = udp ]; then
      socat "UDP4-RECVFROM:$hport,bind=$bind,fork,reuseaddr" "UDP4-SENDTO:$cip:$gport" &
    else
      socat "TCP4-LISTEN:$hport,bind=$bind,fork,reuseaddr" "TCP4:$cip:$gport" &
    fi
    forwarders="$forwarders $!"
  done < forwards
  echo "$forwarders" > forwarders.pids
fi
delay=1
while [ ! -e stop ]; do
  "$RUNC" delete --force "$ID" >/dev/null 2>&1
  date -u +%Y-%m-%dT%H:%M:%SZ > started
  "$RUNC" run --bundle bundle "$ID" >> output.log 2>&1 < /dev/null &
  child=$!
  # wait returns early when a trapped signal arrives: wait again for the real exit.
  while kill -0 "$child" 2>/dev/null; do wait "$child"; code=$?; done
  echo "$code $(date -u +%Y-%m-%dT%H:%M:%SZ)" > exit
  if [ -e restart ]; then rm -f restart; delay=1; continue; fi
  [ -e stop ] && break
  case "$POLICY" in
    never) break ;;
    on-failure) [ "$code" = 0 ] && break ;;
  esac
  echo $(( $(cat restarts 2>/dev/null || echo 0) + 1 )) > restarts
  echo "[continuum] exited with $code; restarting in \${delay}s" >> output.log
  sleep "$delay"
  delay=$(( delay * 2 )); [ "$delay" -gt 30 ] && delay=30
done
[ -n "$forwarders" ] && kill $forwarders 2>/dev/null
"$RUNC" delete --force "$ID" >/dev/null 2>&1
rm -f supervisor.pid
`;

export class RuncRuntime implements Runtime {
  readonly name = 'runc';
  readonly kinds = ['container'] as const;
  private readonly runc: string;
  private readonly umoci: string;
  private readonly stopTimeoutMs: number;
  private readonly bind: string;
  /** Creates one at a time: each picks a free network block. */
  private creating: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: RuncRuntimeOptions) {
    this.bind = opts.portBindAddress ?? '0.0.0.0';
    this.runc = opts.runc ?? 'runc';
    this.umoci = opts.umoci ?? 'umoci';
    this.stopTimeoutMs = opts.stopTimeoutMs ?? 10_000;
  }

  private dirOf(id: string): string {
    return instanceDir(this.opts.dir, id);
  }

  private readMeta(id: string): Promise<Meta | undefined> {
    return readMeta<Meta>(this.opts.dir, id);
  }

  async create(spec: InstanceRuntimeSpec): Promise<void> {
    const done = this.creating.then(() => this.createOne(spec));
    this.creating = done.catch(() => {});
    return done;
  }

  private async createOne(spec: InstanceRuntimeSpec): Promise<void> {
    const img = spec.image;
    if (img.format !== 'oci' || !img.files.oci)
      throw new Error(`a container needs an OCI image (got a ${img.format} image)`);
    const dir = this.dirOf(spec.id);
    await fs.mkdir(dir, { recursive: true });
    const bundle = join(dir, 'bundle');
    const unpacked = await fs.stat(join(bundle, 'rootfs')).then(
      () => true,
      () => false,
    );
    // The root filesystem is made once (it keeps what the container wrote); the
    // configuration follows the spec at every create.
    if (!unpacked) await this.unpack(img.files.oci, img.ref ?? 'latest', dir);
    const old = await this.readMeta(spec.id);
    const net = old?.net ?? (await this.freeNet(spec.id));
    const ports = await allocatePorts(this.bind, spec.ports, old?.ports ?? []);
    const config = JSON.parse(await fs.readFile(join(bundle, 'config.json'), 'utf8'));
    await fs.writeFile(
      join(bundle, 'config.json'),
      JSON.stringify(containerConfig(config, spec, join(NETNS_DIR, net.ns)), null, 1),
    );
    await fs.writeFile(
      join(dir, 'forwards'),
      ports.map((p) => `${p.protocol} ${this.bind} ${p.host} ${net.ctrIp} ${p.guest}\n`).join(''),
    );
    await fs.writeFile(join(dir, 'supervise.sh'), SUPERVISOR, { mode: 0o755 });
    // Not running: stopped until started (a running one keeps running with its new configuration next time).
    if (!(await this.supervisorPid(spec.id))) await fs.writeFile(join(dir, 'stop'), '');
    await fs.writeFile(join(dir, 'meta.json'), JSON.stringify({ spec, net, ports } satisfies Meta, null, 2));
  }

  /**
   * A network block no container of this host uses: from one derived from the
   * directory and id (runtimes of several agents on one host rarely meet), the next free.
   */
  private async freeNet(id: string): Promise<Net> {
    const taken = new Set(await fs.readdir(NETNS_DIR).catch(() => [] as string[]));
    const { stdout } = await run('ip', ['-o', 'addr', 'show']);
    const start = createHash('sha256').update(`${this.opts.dir}/${id}`).digest().readUInt32BE(0) % BLOCKS;
    for (let k = 0; k < BLOCKS; k++) {
      const net = netOf((start + k) % BLOCKS);
      if (!taken.has(net.ns) && !stdout.includes(` ${net.hostIp}/`)) return net;
    }
    throw new Error('no free container network on this host (16,384 in use)');
  }

  /** The container's namespace and veth pair, made if missing (after a host reboot, say). */
  private async ensureNetwork(net: Net): Promise<void> {
    const exists = await fs.stat(join(NETNS_DIR, net.ns)).then(
      () => true,
      () => false,
    );
    if (exists) return;
    const ctrIf = `${net.hostIf.slice(0, -1)}c`;
    const steps: string[][] = [
      ['netns', 'add', net.ns],
      ['link', 'add', net.hostIf, 'type', 'veth', 'peer', 'name', ctrIf],
      ['link', 'set', ctrIf, 'netns', net.ns],
      ['-n', net.ns, 'link', 'set', ctrIf, 'name', 'eth0'],
      ['-n', net.ns, 'addr', 'add', `${net.ctrIp}/30`, 'dev', 'eth0'],
      ['-n', net.ns, 'link', 'set', 'eth0', 'up'],
      ['-n', net.ns, 'link', 'set', 'lo', 'up'],
      ['-n', net.ns, 'route', 'add', 'default', 'via', net.hostIp],
      ['addr', 'add', `${net.hostIp}/30`, 'dev', net.hostIf],
      ['link', 'set', net.hostIf, 'up'],
    ];
    try {
      for (const args of steps) await run('ip', args);
    } catch (err) {
      await this.removeNetwork(net);
      const e = err as { stderr?: string; message: string };
      throw new Error(`setting up the container's network failed: ${(e.stderr || e.message).trim()}`);
    }
  }

  /** Port forwarders a supervisor killed outright (SIGKILL) could not end itself. */
  private async killForwarders(id: string): Promise<void> {
    const text = await fs.readFile(join(this.dirOf(id), 'forwarders.pids'), 'utf8').catch(() => '');
    for (const pid of text
      .split(/\s+/)
      .map(Number)
      .filter((n) => Number.isInteger(n) && n > 0)) {
      const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      if (!cmdline.startsWith('socat')) continue;
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // Gone meanwhile.
      }
    }
  }

  /** Deleting the namespace deletes the veth pair with it. */
  private async removeNetwork(net: Net): Promise<void> {
    await run('ip', ['netns', 'del', net.ns]).catch(() => {});
    await run('ip', ['link', 'del', net.hostIf]).catch(() => {});
  }

  /** The image (an OCI layout as a tar archive) unpacked into `dir/bundle` by umoci. */
  private async unpack(archive: string, ref: string, dir: string): Promise<void> {
    const layout = join(dir, 'image');
    await fs.rm(layout, { recursive: true, force: true });
    await fs.mkdir(layout);
    try {
      await run('tar', ['-xf', archive, '-C', layout]);
      await fs.rm(join(dir, 'bundle'), { recursive: true, force: true });
      await run(this.umoci, ['unpack', '--image', `${layout}:${ref}`, join(dir, 'bundle')]);
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`unpacking the image failed: ${(e.stderr || e.message).trim()}`);
    } finally {
      await fs.rm(layout, { recursive: true, force: true });
    }
  }

  /** The supervisor's pid, if it is alive and really supervises this container. */
  private async supervisorPid(id: string): Promise<number | undefined> {
    const dir = this.dirOf(id);
    try {
      const pid = Number((await fs.readFile(join(dir, 'supervisor.pid'), 'utf8')).trim());
      if (!Number.isInteger(pid) || pid <= 0) return undefined;
      const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
      if (/^\d+ \(.*\) Z/.test(stat)) return undefined;
      const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8');
      return cmdline.includes(join(dir, 'supervise.sh')) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** runc's view of the container: its state and init pid, or undefined when it has none. */
  private async runcState(id: string): Promise<{ status: string; pid: number } | undefined> {
    try {
      const { stdout } = await run(this.runc, ['state', id]);
      const s = JSON.parse(stdout) as { status: string; pid: number };
      return s;
    } catch {
      return undefined;
    }
  }

  async start(id: string): Promise<InstanceObservation> {
    const meta = await this.readMeta(id);
    if (!meta) throw new Error(`instance ${id} does not exist on this node`);
    const dir = this.dirOf(id);
    let supervisor = await this.supervisorPid(id);
    // A supervisor whose container is not running is ending (its policy said no more) or
    // waiting to run it again: see which for a moment.
    const until = Date.now() + 3000;
    while (supervisor && Date.now() < until && (await this.runcState(id))?.status !== 'running') {
      await sleep(50);
      supervisor = await this.supervisorPid(id);
    }
    if (!supervisor) {
      await this.ensureNetwork(meta.net);
      // A new run: what the last one left says nothing about this one.
      for (const f of ['stop', 'exit', 'started', 'restart']) await fs.rm(join(dir, f), { force: true });
      const policy = meta.spec.container?.restart ?? 'always';
      const child = spawn('/bin/sh', [join(dir, 'supervise.sh'), this.runc, id, policy], {
        detached: true,
        stdio: 'ignore',
        cwd: dir,
      });
      child.unref();
      // Running once runc says so (or once it has exited, for a command that ends at once).
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        const s = await this.runcState(id);
        if (s?.status === 'running') break;
        if (await this.exited(id)) break;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    return this.inspect(id);
  }

  /** The last exit the supervisor recorded since it was started. */
  private async exited(id: string): Promise<{ code: number; at: string } | undefined> {
    try {
      const [code, at] = (await fs.readFile(join(this.dirOf(id), 'exit'), 'utf8')).trim().split(' ');
      return { code: Number(code), at: at ?? '' };
    } catch {
      return undefined;
    }
  }

  async stop(id: string, timeoutMs = this.stopTimeoutMs): Promise<void> {
    const dir = this.dirOf(id);
    await fs.writeFile(join(dir, 'stop'), '');
    if (!(await this.supervisorPid(id))) return;
    const s = await this.runcState(id);
    if (s) await this.terminate(id, s.pid, timeoutMs);
    // The supervisor sees `stop` and ends once the container has.
    const deadline = Date.now() + timeoutMs + 5000;
    while (Date.now() < deadline && (await this.supervisorPid(id))) await sleep(100);
  }

  /**
   * Ends the container (SIGTERM, SIGKILL after the grace period: a shell as PID 1
   * ignores SIGTERM) and has the supervisor start it again at once.
   */
  async reboot(id: string): Promise<void> {
    const s = await this.runcState(id);
    if (s?.status !== 'running') throw new Error(`instance ${id} is not running`);
    await fs.writeFile(join(this.dirOf(id), 'restart'), '');
    await this.terminate(id, s.pid, this.stopTimeoutMs);
  }

  /** SIGTERM to the container, SIGKILL to all its processes if `pid` still runs after the timeout. */
  private async terminate(id: string, pid: number, timeoutMs: number): Promise<void> {
    await run(this.runc, ['kill', id, 'TERM']).catch(() => {});
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && (await this.runcState(id))?.pid === pid) await sleep(100);
    if ((await this.runcState(id))?.pid === pid)
      await run(this.runc, ['kill', '--all', id, 'KILL']).catch(() => {});
  }

  async delete(id: string): Promise<void> {
    const dir = this.dirOf(id);
    const meta = await this.readMeta(id);
    if (!meta) {
      await fs.rm(dir, { recursive: true, force: true });
      return;
    }
    await this.stop(id, 2000);
    await run(this.runc, ['delete', '--force', id]).catch(() => {});
    await this.killForwarders(id);
    if (meta?.net) await this.removeNetwork(meta.net);
    await fs.rm(dir, { recursive: true, force: true });
  }

  async inspect(id: string): Promise<InstanceObservation> {
    const meta = await this.readMeta(id);
    if (!meta) return { id, state: 'absent', ports: [] };
    const dir = this.dirOf(id);
    const supervisor = await this.supervisorPid(id);
    const s = supervisor ? await this.runcState(id) : undefined;
    const startedAt = (await fs.readFile(join(dir, 'started'), 'utf8').catch(() => '')).trim() || undefined;
    if (s?.status === 'running')
      return { id, state: 'running', pid: s.pid, ports: meta.ports, ...(startedAt ? { startedAt } : {}) };
    const stopped = await fs.stat(join(dir, 'stop')).then(
      () => true,
      () => false,
    );
    if (stopped) return { id, state: 'stopped', ports: meta.ports };
    // Waiting to be restarted, or its supervisor gone without being asked: not running.
    const exit = await this.exited(id);
    if (!supervisor && exit?.code === 0 && meta.spec.container?.restart !== 'always')
      return { id, state: 'stopped', ports: meta.ports };
    return { id, state: 'crashed', ports: meta.ports };
  }

  async list(): Promise<string[]> {
    try {
      const names = await fs.readdir(this.opts.dir);
      const ids: string[] = [];
      for (const n of names) if (ID_PATTERN.test(n) && (await this.readMeta(n))) ids.push(n);
      return ids;
    } catch {
      return [];
    }
  }

  /** Every file the container has here (its unpacked bundle included), for an erasure's record. */
  async files(id: string): Promise<{ name: string; path: string }[]> {
    return filesUnder(this.dirOf(id));
  }

  /** The container's output (stdout and stderr, with the supervisor's restart notes). */
  async readConsole(id: string, offset = 0, limit = 65536): Promise<{ data: string; next: number }> {
    const path = join(this.dirOf(id), 'output.log');
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(path, 'r');
    } catch {
      return { data: '', next: offset };
    }
    try {
      const buf = Buffer.alloc(limit);
      const { bytesRead } = await handle.read(buf, 0, limit, offset);
      return { data: buf.subarray(0, bytesRead).toString('utf8'), next: offset + bytesRead };
    } finally {
      await handle.close();
    }
  }

  /** How often the supervisor restarted the container. */
  async restarts(id: string): Promise<number> {
    const text = await fs.readFile(join(this.dirOf(id), 'restarts'), 'utf8').catch(() => '0');
    return Number(text.trim()) || 0;
  }
}

/**
 * The OCI runtime configuration for a spec, from the one umoci made of the image: the
 * command (the spec's, else the image's), environment, hostname, no terminal, the
 * container's network namespace, CPU and memory limits in cgroups (memory without swap,
 * so exceeding it kills the process).
 */
export function containerConfig(base: any, spec: InstanceRuntimeSpec, netns: string): any {
  const c = structuredClone(base);
  const ctr = spec.container ?? {};
  c.process ??= {};
  c.process.terminal = false;
  const imageArgs: string[] = c.process.args ?? [];
  if (ctr.command?.length) c.process.args = [...ctr.command, ...(ctr.args ?? [])];
  else if (ctr.args?.length) c.process.args = [...imageArgs.slice(0, 1), ...ctr.args];
  const env = new Map<string, string>(
    (c.process.env ?? []).map((e: string) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
  );
  for (const [k, v] of Object.entries(ctr.env ?? {})) env.set(k, v);
  c.process.env = [...env].map(([k, v]) => `${k}=${v}`);
  c.hostname = spec.hostname;
  c.linux ??= {};
  // Its own network namespace, made beforehand (joined by path).
  c.linux.namespaces = [
    ...(c.linux.namespaces ?? []).filter((n: { type: string }) => n.type !== 'network'),
    { type: 'network', path: netns },
  ];
  const bytes = spec.memoryMiB * 1024 * 1024;
  c.linux.resources = {
    ...(c.linux.resources ?? {}),
    memory: { limit: bytes, swap: bytes },
    cpu: { period: 100_000, quota: spec.vcpus * 100_000 },
  };
  return c;
}

/** Why this host cannot run containers (a missing program, or not root); undefined: it can. */
export function containersUnsupported(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (process.getuid?.() !== 0) return 'containers need root (runc, network namespaces)';
  const dirs = (env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':');
  const missing = ['runc', 'umoci', 'socat', 'ip'].filter(
    (p) =>
      !dirs.some((d) => {
        try {
          accessSync(join(d, p), constants.X_OK);
          return true;
        } catch {
          return false;
        }
      }),
  );
  if (missing.length) return `missing ${missing.join(', ')}`;
  // runc puts each container in cgroups: there must be a cgroup filesystem in sight.
  try {
    if (!/ - cgroup2? /.test(readFileSync('/proc/self/mountinfo', 'utf8')))
      return 'no cgroup filesystem mounted';
  } catch {
    return 'no /proc/self/mountinfo';
  }
  return undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export { RESTART_POLICIES };
