// The last few minutes of each node's heartbeat metrics, in memory, for the console's
// sparklines. The store keeps only the latest reading (written at most every few
// seconds); a history there would be most of its writes at fleet scale.
//
// Each node's readings live in one typed array, written in place as a ring: at 10,000
// nodes a reading every 5 s, an array a reading lived minutes and was garbage the
// collector had to promote and then mark, ~2,000 times a second.
import type { NodeMetrics } from '../protocol/index.js';

/** One reading: seconds since the epoch, CPU busy %, memory used %. */
export type MetricsSample = readonly [time: number, cpuPercent: number, memoryPercent: number];

/** A node's readings: `size` of them from `start`, three numbers each, wrapping around. */
interface Ring {
  readonly data: Float64Array;
  start: number;
  size: number;
}

export class MetricsHistory {
  private readonly rings = new Map<string, Ring>();

  /** `keep`: readings per node; `minGapMs`: readings closer than this to the previous one are dropped. */
  constructor(
    private readonly keep = 60,
    private readonly minGapMs = 5_000,
  ) {}

  record(provider: string, node: string, m: NodeMetrics, now = Date.now()): void {
    const key = `${provider}/${node}`;
    let ring = this.rings.get(key);
    if (!ring) {
      ring = { data: new Float64Array(this.keep * 3), start: 0, size: 0 };
      this.rings.set(key, ring);
    }
    const { data } = ring;
    if (ring.size && now - data[((ring.start + ring.size - 1) % this.keep) * 3]! * 1000 < this.minGapMs)
      return;
    let at: number;
    if (ring.size < this.keep) at = (ring.start + ring.size++) % this.keep;
    else {
      at = ring.start;
      ring.start = (ring.start + 1) % this.keep;
    }
    const memory = m.memoryTotalMiB > 0 ? (100 * m.memoryUsedMiB) / m.memoryTotalMiB : 0;
    data[at * 3] = Math.round(now / 1000);
    data[at * 3 + 1] = Math.round(m.cpuPercent * 10) / 10;
    data[at * 3 + 2] = Math.round(memory * 10) / 10;
  }

  /** The node's readings, oldest first. */
  of(provider: string, node: string): MetricsSample[] {
    const ring = this.rings.get(`${provider}/${node}`);
    if (!ring) return [];
    const out: MetricsSample[] = [];
    for (let i = 0; i < ring.size; i++) {
      const at = ((ring.start + i) % this.keep) * 3;
      out.push([ring.data[at]!, ring.data[at + 1]!, ring.data[at + 2]!]);
    }
    return out;
  }

  /** A node that left the federation. */
  forget(provider: string, node: string): void {
    this.rings.delete(`${provider}/${node}`);
  }
}
