// Hardware virtualization detection. /dev/kvm can exist and still fail: nested set-ups
// where QEMU starts, the vCPU runs real-mode code, and the guest then dies as soon as it
// turns on paging (a Linux kernel "hangs" in its decompressor, resetting over and over).
// So KVM counts as usable only if a real guest boots under it within a short timeout:
// the boot sector below enters protected mode, turns paging on, runs a loop that writes
// memory through it and reports each step on the serial port. Anything short of the
// full report (a triple fault ends QEMU at once with -no-reboot) means TCG.
import { spawn } from 'node:child_process';
import { constants, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type Accelerator = 'kvm' | 'tcg';

// A working KVM boots the probe in well under a tenth of a second (QEMU's start included),
// emulation in about 0.15 s; a broken one here takes 5 s to even fault.
const PROBE_TIMEOUT_MS = 2500;
/** Once the guest reported protected mode, how long the remaining steps may take. */
const STEP_TIMEOUT_MS = 1000;
/** What the probe guest writes to its serial port: protected mode, paging, loop done. */
export const PROBE_REPORT = 'PGD';

/**
 * The probe guest: a 512-byte x86 boot sector (hand-assembled; BIOS loads it at 0x7c00).
 * Real mode: load a flat GDT, set CR0.PE, far-jump to 32-bit code. Protected mode: write
 * 'P' to COM1; map the first 4 MiB with one 4 MiB page (page directory at 0x9000),
 * set CR4.PSE, CR3 and CR0.PG; write 'G'; write a counter to 0x8000 a million times;
 * write 'D'; halt.
 */
export function probeBootSector(): Buffer {
  const ORIGIN = 0x7c00;
  const GDT = 0x80; // offset of the GDT in the sector, its descriptor follows it
  const u16 = (n: number) => [n & 0xff, (n >> 8) & 0xff];
  const u32 = (n: number) => [...u16(n & 0xffff), ...u16(n >>> 16)];
  const serial = (ch: string) => [0x66, 0xba, 0xf8, 0x03, 0xb0, ch.charCodeAt(0), 0xee]; // mov dx,0x3f8; mov al,ch; out dx,al
  const real = [
    0xfa, // cli
    0x0f,
    0x01,
    0x16,
    ...u16(ORIGIN + GDT + 24), // lgdt [descriptor]
    0x0f,
    0x20,
    0xc0, // mov eax, cr0
    0x66,
    0x83,
    0xc8,
    0x01, // or eax, 1
    0x0f,
    0x22,
    0xc0, // mov cr0, eax
  ];
  const farJumpLength = 8;
  const protectedMode = [
    0x66,
    0xb8,
    0x10,
    0x00,
    0x8e,
    0xd8, // mov ax, 0x10; mov ds, ax
    ...serial('P'),
    0xb8,
    ...u32(0x83), // mov eax, 0x83 (present, writable, 4 MiB page at 0)
    0xa3,
    ...u32(0x9000), // mov [0x9000], eax
    0x0f,
    0x20,
    0xe0,
    0x83,
    0xc8,
    0x10,
    0x0f,
    0x22,
    0xe0, // cr4 |= PSE
    0xb8,
    ...u32(0x9000),
    0x0f,
    0x22,
    0xd8, // cr3 = 0x9000
    0x0f,
    0x20,
    0xc0,
    0x0d,
    ...u32(0x80000000),
    0x0f,
    0x22,
    0xc0, // cr0 |= PG
    ...serial('G'),
    0xb9,
    ...u32(1_000_000), // mov ecx, 1000000
    0x89,
    0x0d,
    ...u32(0x8000),
    0x49,
    0x75,
    0xf7, // loop: mov [0x8000], ecx; dec ecx; jnz loop
    ...serial('D'),
    0xf4,
    0xeb,
    0xfd, // hlt; jmp back to hlt
  ];
  const farJump = [0x66, 0xea, ...u32(ORIGIN + real.length + farJumpLength), ...u16(0x08)];
  const code = [...real, ...farJump, ...protectedMode];
  if (code.length > GDT) throw new Error('probe boot sector: code overlaps the GDT');
  const sector = Buffer.alloc(512);
  Buffer.from(code).copy(sector, 0);
  // Null descriptor, flat 4 GiB code (0x08) and data (0x10) segments, then the descriptor.
  Buffer.from('0000000000000000ffff0000009acf00ffff00000092cf00', 'hex').copy(sector, GDT);
  Buffer.from([...u16(23), ...u32(ORIGIN + GDT)]).copy(sector, GDT + 24);
  sector[510] = 0x55;
  sector[511] = 0xaa;
  return sector;
}

/** Boots the probe guest (or `sector`) under `accel`; true if it reported every step in time. */
export async function probeAccelerator(
  qemu: string,
  accel: Accelerator,
  opts: { timeoutMs?: number; sector?: Buffer } = {},
): Promise<boolean> {
  const timeoutMs = opts.timeoutMs ?? PROBE_TIMEOUT_MS;
  const dir = await fs.mkdtemp(join(tmpdir(), 'continuum-accel-'));
  const disk = join(dir, 'probe.img');
  await fs.writeFile(disk, opts.sector ?? probeBootSector());
  try {
    return await new Promise<boolean>((resolve) => {
      const child = spawn(
        qemu,
        [
          '-machine',
          `pc,accel=${accel}`,
          '-cpu',
          accel === 'kvm' ? 'host' : 'max',
          '-m',
          '16',
          '-no-reboot',
          '-nodefaults',
          '-no-user-config',
          '-display',
          'none',
          '-serial',
          'stdio',
          '-drive',
          `file=${disk},format=raw,if=ide,snapshot=on`,
        ],
        { stdio: ['ignore', 'pipe', 'ignore'] },
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
      const timer = setTimeout(() => finish(false), timeoutMs);
      child.on('error', () => finish(false));
      child.on('exit', () => finish(false));
      child.stdout.on('data', (d) => {
        const first = out === '';
        out += d;
        if (out.startsWith(PROBE_REPORT)) finish(true);
        else if (!PROBE_REPORT.startsWith(out)) finish(false);
        // The rest takes microseconds on KVM (a tenth of a second emulated); a guest that
        // died turning paging on leaves QEMU seconds of tearing down before it exits.
        else if (first) setTimeout(() => finish(false), STEP_TIMEOUT_MS);
      });
    });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

async function probeKvm(qemu: string): Promise<boolean> {
  try {
    await fs.access('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return false;
  }
  return probeAccelerator(qemu, 'kvm');
}

let cached: Promise<Accelerator> | undefined;

/** KVM if it demonstrably works, else TCG; CONTINUUM_ACCEL=kvm|tcg overrides. */
export function detectAccelerator(qemu = 'qemu-system-x86_64'): Promise<Accelerator> {
  const forced = process.env.CONTINUUM_ACCEL;
  if (forced === 'kvm' || forced === 'tcg') return Promise.resolve(forced);
  cached ??= probeKvm(qemu).then((ok) => (ok ? 'kvm' : 'tcg'));
  return cached;
}
