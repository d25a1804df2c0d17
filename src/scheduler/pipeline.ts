// The placement pipeline: filters in cost order (cheap checks first, each rejection
// counted under its reason), then weighted scorers over the feasible nodes.
import { acceleratorModel, exhaustedDimension, fits } from './filters/capacity.js';
import { architecture, confidential, labels, virtualization } from './filters/hardware.js';
import { latency as latencyFilter } from './filters/latency.js';
import { avoided, pinned, ready, schedulable } from './filters/node.js';
import {
  certifications,
  countries,
  euControl,
  jurisdiction,
  providers,
  sovereignty,
} from './filters/sovereignty.js';
import { spread as spreadFilter } from './filters/spread.js';
import { REASONS } from './reasons.js';
import { SCORERS } from './scorers/index.js';
import type { CandidateNode, Decision, Explanation, Filter, PlacementRequest, ScoredNode } from './types.js';

export const FILTERS: readonly Filter[] = [
  pinned, // a pinned workload considers one node only
  avoided, // never back onto the node being replaced
  ready, // heartbeating nodes only
  schedulable, // not cordoned or draining
  providers, // tenant's allow and deny lists
  countries, // data residency
  jurisdiction, // provider's legal jurisdiction
  euControl, // provider controlled from the EU
  sovereignty, // derived sovereignty level
  certifications, // every required certification
  architecture, // x86_64, aarch64, riscv64
  virtualization, // KVM when the policy needs it
  confidential, // SEV-SNP / TDX
  labels, // node selector
  acceleratorModel, // the right kind of accelerator at all
  latencyFilter, // every user location within its round-trip budget (a few trig calls)
  spreadFilter, // hard spread over providers, sites or countries
  fits, // free capacity, last: it depends on what was placed a moment ago
];

export interface ScheduleOptions {
  /** Stop after this many feasible nodes (Nomad-style limit) to bound the cost at scale. */
  limitFeasible?: number;
  topScores?: number;
}

function weightsFor(req: PlacementRequest): Record<string, number> {
  const w = req.policy.weights ?? {};
  const out: Record<string, number> = {};
  for (const s of SCORERS) {
    let weight = s.name in w ? (w as Record<string, number>)[s.name]! : s.defaultWeight;
    if (s.name === 'latency' && !req.policy.latency?.length) weight = 0;
    if (s.name === 'spread' && !req.policy.spread) weight = 0;
    out[s.name] = weight;
  }
  return out;
}

/** "0/12 nodes are available: 7 missing kvm, 5 resources exhausted". */
export function unschedulableMessage(e: Explanation): string {
  const parts = Object.entries(e.filtered)
    .sort((a, b) => b[1] - a[1])
    .map(([reason, count]) => `${count} ${reason}`);
  return `0/${e.nodesEvaluated} nodes are available${parts.length ? `: ${parts.join(', ')}` : ''}`;
}

export function schedule(
  nodes: Iterable<CandidateNode>,
  req: PlacementRequest,
  opts: ScheduleOptions = {},
): Decision {
  const explanation: Explanation = {
    nodesEvaluated: 0,
    feasible: 0,
    filtered: {},
    exhausted: {},
    topScores: [],
  };
  const feasible: CandidateNode[] = [];
  const limit = opts.limitFeasible ?? Number.POSITIVE_INFINITY;
  for (const n of nodes) {
    explanation.nodesEvaluated++;
    let rejected: string | undefined;
    for (const f of FILTERS) {
      rejected = f.check(n, req);
      if (rejected) break;
    }
    if (rejected) {
      explanation.filtered[rejected] = (explanation.filtered[rejected] ?? 0) + 1;
      if (rejected === REASONS.resources) {
        const d = exhaustedDimension(n, req)!;
        explanation.exhausted[d] = (explanation.exhausted[d] ?? 0) + 1;
      }
      continue;
    }
    feasible.push(n);
    if (feasible.length >= limit) break;
  }
  explanation.feasible = feasible.length;
  if (!feasible.length)
    return { ok: false, code: 'unschedulable', explanation, message: unschedulableMessage(explanation) };
  const weights = weightsFor(req);
  // Scorers with no weight are not computed; each scorer is rescaled once over all nodes.
  const active = SCORERS.filter((s) => weights[s.name]! > 0);
  const weightSum = active.reduce((sum, s) => sum + weights[s.name]!, 0);
  const columns = active.map((s) => {
    const values = feasible.map((n) => s.score(n, req));
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (const v of values) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    return values.map((v) => (max === min ? 100 : (100 * (v - min)) / (max - min)));
  });
  const scored: ScoredNode[] = feasible.map((n, i) => {
    const scores: Record<string, number> = {};
    let total = 0;
    active.forEach((s, j) => {
      const v = columns[j]![i]!;
      scores[s.name] = Math.round(v * 10) / 10;
      total += v * weights[s.name]!;
    });
    return { node: n.key, total: Math.round((weightSum ? total / weightSum : 100) * 10) / 10, scores };
  });
  let best = 0;
  for (let i = 1; i < scored.length; i++) if (scored[i]!.total > scored[best]!.total) best = i;
  explanation.topScores = [...scored].sort((a, b) => b.total - a.total).slice(0, opts.topScores ?? 5);
  return { ok: true, node: feasible[best]!, explanation };
}
