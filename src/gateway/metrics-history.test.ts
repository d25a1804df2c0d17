import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MetricsHistory } from './metrics-history.js';

const reading = (cpuPercent: number, memoryUsedMiB = 512) => ({
  cpuPercent,
  memoryUsedMiB,
  memoryTotalMiB: 2048,
  load1: 0,
  load5: 0,
  load15: 0,
});

test('metrics history: the last readings per node, oldest first, spaced and rounded', () => {
  const h = new MetricsHistory(3, 5_000);
  const t0 = 1_700_000_000_000;
  assert.deepEqual(h.of('p', 'n1'), []);
  h.record('p', 'n1', reading(12.345), t0);
  // Closer than the gap to the last kept reading: dropped.
  h.record('p', 'n1', reading(99), t0 + 4_000);
  h.record('p', 'n2', reading(50, 1024), t0 + 1_000);
  assert.deepEqual(h.of('p', 'n1'), [[1_700_000_000, 12.3, 25]]);
  assert.deepEqual(h.of('p', 'n2'), [[1_700_000_001, 50, 50]]);
  // Past `keep` readings the oldest go, the order stays.
  for (let i = 1; i <= 4; i++) h.record('p', 'n1', reading(i), t0 + i * 5_000);
  assert.deepEqual(h.of('p', 'n1'), [
    [1_700_000_010, 2, 25],
    [1_700_000_015, 3, 25],
    [1_700_000_020, 4, 25],
  ]);
  // A node of no memory reports 0 %, not NaN; another provider's namesake is apart.
  h.record('q', 'n1', { ...reading(1), memoryTotalMiB: 0 }, t0);
  assert.deepEqual(h.of('q', 'n1'), [[1_700_000_000, 1, 0]]);
  h.forget('p', 'n1');
  assert.deepEqual(h.of('p', 'n1'), []);
  assert.equal(h.of('q', 'n1').length, 1);
});
