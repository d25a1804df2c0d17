// Node and per-instance usage for heartbeats, from /proc.
import { promises as fs } from 'node:fs';
import { freemem, loadavg, totalmem } from 'node:os';
import type { NodeMetrics } from '../protocol/index.js';

let lastCpu: { idle: number; total: number } | undefined;

async function cpuTimes(): Promise<{ idle: number; total: number }> {
  const line = (await fs.readFile('/proc/stat', 'utf8')).split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { idle, total: v.reduce((a, b) => a + b, 0) };
}

export async function nodeMetrics(): Promise<NodeMetrics> {
  const now = await cpuTimes();
  const prev = lastCpu;
  lastCpu = now;
  const dt = prev ? now.total - prev.total : 0;
  const cpuPercent = prev && dt > 0 ? Math.round((1 - (now.idle - prev.idle) / dt) * 1000) / 10 : 0;
  const [load1, load5, load15] = loadavg() as [number, number, number];
  return {
    cpuPercent,
    memoryUsedMiB: Math.round((totalmem() - freemem()) / 1048576),
    memoryTotalMiB: Math.round(totalmem() / 1048576),
    load1,
    load5,
    load15,
  };
}

/** CPU seconds and resident memory of a process (a VM's QEMU). */
export async function processUsage(pid: number): Promise<{ cpuSeconds: number; rssMiB: number } | undefined> {
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    return { cpuSeconds: ticks / 100, rssMiB: Math.round(rssKb / 1024) };
  } catch {
    return undefined;
  }
}
