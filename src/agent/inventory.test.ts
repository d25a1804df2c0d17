// Inventory detection from sysfs and /proc, on fixture trees in the kernel's own format.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { detectAccelerators, detectCpuSecurity } from './inventory.js';

const root = mkdtempSync(join(tmpdir(), 'continuum-sysfs-'));
after(() => rmSync(root, { recursive: true, force: true }));

function device(addr: string, cls: string, vendor: string, dev: string, extra: Record<string, string> = {}) {
  const d = join(root, 'devices', addr);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'class'), `${cls}\n`);
  writeFileSync(join(d, 'vendor'), `${vendor}\n`);
  writeFileSync(join(d, 'device'), `${dev}\n`);
  for (const [k, v] of Object.entries(extra)) writeFileSync(join(d, k), `${v}\n`);
}

test('GPUs and accelerators are found on the PCI bus, grouped by model, with names from pci.ids', async () => {
  device('0000:00:00.0', '0x060000', '0x8086', '0x29c0'); // host bridge
  device('0000:00:02.0', '0x030000', '0x1234', '0x1111'); // QEMU std-vga: no accelerator
  device('0000:17:00.0', '0x030200', '0x10de', '0x2331'); // NVIDIA H100
  device('0000:65:00.0', '0x030200', '0x10de', '0x2331');
  device('0000:ca:00.0', '0x038000', '0x1002', '0x740f', { mem_info_vram_total: String(64 * 1024 ** 3) }); // AMD MI210
  device('0000:b1:00.0', '0x120000', '0x1db7', '0x1020'); // Habana Gaudi2
  const ids = join(root, 'pci.ids');
  writeFileSync(
    ids,
    [
      '# fixture in pci.ids format',
      '10de  NVIDIA Corporation',
      '\t2331  GH100 [H100 PCIe]',
      '1002  Advanced Micro Devices, Inc. [AMD/ATI]',
      '\t740f  Aldebaran/MI200 [Instinct MI210]',
      '',
    ].join('\n'),
  );
  const found = await detectAccelerators(join(root, 'devices'), ids);
  assert.deepEqual(found, [
    { vendor: 'NVIDIA', model: 'GH100 [H100 PCIe]', count: 2 },
    { vendor: 'Habana', model: '0x1db7:0x1020', count: 1 },
    { vendor: 'AMD', model: 'Aldebaran/MI200 [Instinct MI210]', memoryMiB: 65536, count: 1 },
  ]);
  assert.deepEqual(await detectAccelerators(join(root, 'missing')), []);
});

test('confidential computing support comes from KVM module parameters', async () => {
  const sys = join(root, 'module');
  mkdirSync(join(sys, 'kvm_amd', 'parameters'), { recursive: true });
  writeFileSync(join(sys, 'kvm_amd', 'parameters', 'sev_snp'), 'Y\n');
  const cpuinfo = join(root, 'cpuinfo');
  writeFileSync(cpuinfo, 'processor\t: 0\nflags\t\t: fpu vme sse2 sev sev_es\n');
  assert.deepEqual(await detectCpuSecurity(sys, cpuinfo), ['sev-snp']);
  assert.deepEqual(await detectCpuSecurity(join(root, 'nothing'), cpuinfo), []);
});
