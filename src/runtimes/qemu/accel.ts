// Hardware virtualization detection. /dev/kvm can exist and still fail (nested set-ups,
// missing MSRs) or hang, so KVM counts as usable only if a real QEMU starts a vCPU with
// it within a short timeout; otherwise instances run under emulation (TCG).
import { spawn } from 'node:child_process';
import { constants, promises as fs } from 'node:fs';

export type Accelerator = 'kvm' | 'tcg';

const PROBE_TIMEOUT_MS = 5000;

async function probeKvm(qemu: string): Promise<boolean> {
  try {
    await fs.access('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return false;
  }
  return new Promise((resolve) => {
    const child = spawn(
      qemu,
      [
        '-machine',
        'accel=kvm',
        '-cpu',
        'host',
        '-nodefaults',
        '-no-user-config',
        '-display',
        'none',
        '-qmp',
        'stdio',
      ],
      { stdio: ['pipe', 'pipe', 'ignore'] },
    );
    let out = '';
    let done = false;
    const finish = (ok: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), PROBE_TIMEOUT_MS);
    child.on('error', () => finish(false));
    child.on('exit', () => finish(/"enabled":\s*true/.test(out) && /"running":\s*true/.test(out)));
    child.stdout.on('data', (d) => {
      out += d;
      if (/"enabled":\s*true/.test(out) && /"status":\s*"running"/.test(out)) {
        // Give a failing vCPU set-up a moment to abort before calling it usable.
        setTimeout(() => finish(child.exitCode === null), 300);
      }
    });
    child.stdin.write(
      '{"execute":"qmp_capabilities"}\n{"execute":"query-kvm"}\n{"execute":"query-status"}\n',
    );
  });
}

let cached: Promise<Accelerator> | undefined;

/** KVM if it demonstrably works, else TCG; CONTINUUM_ACCEL=kvm|tcg overrides. */
export function detectAccelerator(qemu = 'qemu-system-x86_64'): Promise<Accelerator> {
  const forced = process.env.CONTINUUM_ACCEL;
  if (forced === 'kvm' || forced === 'tcg') return Promise.resolve(forced);
  cached ??= probeKvm(qemu).then((ok) => (ok ? 'kvm' : 'tcg'));
  return cached;
}
