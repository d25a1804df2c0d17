// What a node reports about itself: architecture, CPUs, memory, disk, hostname,
// whether KVM works, CPU security features and PCI accelerators (from sysfs).
import { promises as fs } from 'node:fs';
import { arch, cpus, hostname, totalmem } from 'node:os';
import { join } from 'node:path';
import type { Accelerator, Inventory } from '../protocol/index.js';
import { detectAccelerator } from '../runtimes/index.js';

const ARCH: Record<string, Inventory['architecture']> = {
  x64: 'x86_64',
  arm64: 'aarch64',
  riscv64: 'riscv64',
};

const VENDORS: Record<string, string> = {
  '0x10de': 'NVIDIA',
  '0x1002': 'AMD',
  '0x8086': 'Intel',
  '0x1db7': 'Habana',
};

/**
 * PCI classes of accelerators: 3D controllers (NVIDIA data-centre GPUs), display
 * controllers (AMD Instinct), VGA devices and processing accelerators (Gaudi, NPUs).
 */
const ACCELERATOR_CLASSES = [/^0x0302/, /^0x0380/, /^0x0300/, /^0x1200/];

async function read(path: string): Promise<string | undefined> {
  try {
    return (await fs.readFile(path, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

/** Looks a device name up in pci.ids (pciutils) when it is installed. */
async function pciName(vendor: string, device: string, pciIds: string): Promise<string | undefined> {
  const text = await read(pciIds);
  if (!text) return undefined;
  const v = vendor.replace(/^0x/, '');
  const d = device.replace(/^0x/, '');
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`${v}  `));
  if (start < 0) return undefined;
  for (let i = start + 1; i < lines.length && lines[i]!.startsWith('\t'); i++) {
    const l = lines[i]!;
    if (l.startsWith(`\t${d}  `)) return l.slice(d.length + 3).trim();
  }
  return undefined;
}

/** Scans PCI devices in sysfs; `root` lets tests point at a fixture tree of the same format. */
export async function detectAccelerators(
  root = '/sys/bus/pci/devices',
  pciIds = '/usr/share/misc/pci.ids',
): Promise<Accelerator[]> {
  let entries: string[];
  try {
    entries = await fs.readdir(root);
  } catch {
    return [];
  }
  const found = new Map<string, Accelerator>();
  for (const dev of entries.sort()) {
    const cls = await read(join(root, dev, 'class'));
    const vendor = await read(join(root, dev, 'vendor'));
    const device = await read(join(root, dev, 'device'));
    if (!cls || !vendor || !device || !ACCELERATOR_CLASSES.some((re) => re.test(cls))) continue;
    const vendorName = VENDORS[vendor];
    // Plain VGA from virtual machines or BMCs (QEMU std-vga, ASPEED …) is no accelerator.
    if (!vendorName) continue;
    if (/^0x0300/.test(cls) && vendorName === 'Intel') continue;
    const model = (await pciName(vendor, device, pciIds)) ?? `${vendor}:${device}`;
    const memRaw = await read(join(root, dev, 'mem_info_vram_total'));
    const memoryMiB = memRaw ? Math.round(Number(memRaw) / 1048576) : undefined;
    const k = `${vendorName}\u0000${model}\u0000${memoryMiB ?? ''}`;
    const prev = found.get(k);
    if (prev) prev.count++;
    else found.set(k, { vendor: vendorName, model, ...(memoryMiB ? { memoryMiB } : {}), count: 1 });
  }
  return [...found.values()];
}

/** Host support for confidential VMs, from the KVM module parameters and CPU flags. */
export async function detectCpuSecurity(
  sys = '/sys/module',
  cpuinfo = '/proc/cpuinfo',
): Promise<('sev-snp' | 'tdx')[]> {
  const out: ('sev-snp' | 'tdx')[] = [];
  const on = (v: string | undefined) => v === 'Y' || v === '1';
  const flags = (await read(cpuinfo))?.match(/^flags\s*:(.*)$/m)?.[1]?.split(/\s+/) ?? [];
  if (on(await read(join(sys, 'kvm_amd/parameters/sev_snp'))) || flags.includes('sev_snp'))
    out.push('sev-snp');
  if (on(await read(join(sys, 'kvm_intel/parameters/tdx'))) || flags.includes('tdx_host_platform'))
    out.push('tdx');
  return out;
}

export async function detectInventory(dataDir: string): Promise<Inventory> {
  const fsStat = await fs.statfs(dataDir);
  return {
    hostname: hostname(),
    architecture: ARCH[arch()] ?? 'x86_64',
    cpus: cpus().length,
    memoryMiB: Math.floor(totalmem() / 1048576),
    diskGiB: Math.floor((fsStat.bavail * fsStat.bsize) / 1024 ** 3),
    virtualization: (await detectAccelerator()) === 'kvm' ? 'kvm' : 'emulation',
    cpuSecurity: await detectCpuSecurity(),
    accelerators: await detectAccelerators(),
  };
}
