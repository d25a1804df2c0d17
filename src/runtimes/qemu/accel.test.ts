// The KVM probe's guest, run under emulation (which always works here): it must report
// every step, so a KVM that does not is a KVM that fails; a guest that faults once
// paging is on must count as a failed accelerator, quickly (QEMU exits on the triple fault).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { probeAccelerator, probeBootSector } from './accel.js';

const QEMU = 'qemu-system-x86_64';

test('the probe guest enters protected mode, pages and loops under emulation', async () => {
  const sector = probeBootSector();
  assert.equal(sector.length, 512);
  assert.deepEqual([...sector.subarray(510)], [0x55, 0xaa]);
  assert.equal(await probeAccelerator(QEMU, 'tcg'), true);
});

test('a guest that faults when paging turns on fails the probe', async () => {
  const sector = probeBootSector();
  // The page directory entry `mov eax, 0x83` becomes 0x82: the 4 MiB page is not present.
  const at = sector.indexOf(Buffer.from([0xb8, 0x83, 0x00, 0x00, 0x00]));
  assert.ok(at > 0);
  sector[at + 1] = 0x82;
  assert.equal(await probeAccelerator(QEMU, 'tcg', { sector, timeoutMs: 30_000 }), false);
});

test('a missing QEMU fails the probe', async () => {
  assert.equal(await probeAccelerator('/nonexistent/qemu-system-x86_64', 'tcg'), false);
});
