// A heartbeat's metrics as the gateway keeps them until they are written (up to the
// write interval). Kept as an object, every heartbeat's metrics outlived the young
// generation: at 10,000 nodes, megabytes a second for the old generation's collector to
// mark. A session keeps one typed array instead, overwritten in place by each heartbeat.
import type { NodeMetrics } from '../protocol/index.js';

/** The fields in the order the array holds them; metricsOf reads them in the same order. */
const FIELDS = [
  'cpuPercent',
  'memoryUsedMiB',
  'memoryTotalMiB',
  'load1',
  'load5',
  'load15',
] as const satisfies readonly (keyof NodeMetrics)[];

/** Writes a heartbeat's metrics into `kept` (a new array the first time) and returns it. */
export function keepMetrics(kept: Float64Array | undefined, m: NodeMetrics): Float64Array {
  const into = kept ?? new Float64Array(FIELDS.length);
  for (let i = 0; i < FIELDS.length; i++) into[i] = m[FIELDS[i]!];
  return into;
}

/** The metrics kept; the literal fails to compile when NodeMetrics gains a field. */
export const metricsOf = (k: Float64Array): NodeMetrics => ({
  cpuPercent: k[0]!,
  memoryUsedMiB: k[1]!,
  memoryTotalMiB: k[2]!,
  load1: k[3]!,
  load5: k[4]!,
  load15: k[5]!,
});
