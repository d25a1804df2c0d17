// The last few minutes of each node's heartbeat metrics, in memory, for the console's
// sparklines. The store keeps only the latest reading (written at most every few
// seconds); a history there would be most of its writes at fleet scale.
import type { NodeMetrics } from '../protocol/index.js';

/** One reading: seconds since the epoch, CPU busy %, memory used %. */
export type MetricsSample = readonly [time: number, cpuPercent: number, memoryPercent: number];

export class MetricsHistory {
  private readonly rings = new Map<string, MetricsSample[]>();

  /** `keep`: readings per node; `minGapMs`: readings closer than this to the previous one are dropped. */
  constructor(
    private readonly keep = 60,
    private readonly minGapMs = 5_000,
  ) {}

  record(provider: string, node: string, m: NodeMetrics, now = Date.now()): void {
    const key = `${provider}/${node}`;
    const ring = this.rings.get(key) ?? [];
    if (!ring.length) this.rings.set(key, ring);
    const last = ring[ring.length - 1];
    if (last && now - last[0] * 1000 < this.minGapMs) return;
    const memory = m.memoryTotalMiB > 0 ? (100 * m.memoryUsedMiB) / m.memoryTotalMiB : 0;
    ring.push([Math.round(now / 1000), Math.round(m.cpuPercent * 10) / 10, Math.round(memory * 10) / 10]);
    if (ring.length > this.keep) ring.splice(0, ring.length - this.keep);
  }

  of(provider: string, node: string): readonly MetricsSample[] {
    return this.rings.get(`${provider}/${node}`) ?? [];
  }

  /** A node that left the federation. */
  forget(provider: string, node: string): void {
    this.rings.delete(`${provider}/${node}`);
  }
}
