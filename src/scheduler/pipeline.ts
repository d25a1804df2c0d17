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

const DYNAMIC_FILTERS = FILTERS.filter((f) => f.dynamic);

function rejection(filters: readonly Filter[], n: CandidateNode, req: PlacementRequest): string | undefined {
  for (const f of filters) {
    const r = f.check(n, req);
    if (r) return r;
  }
  return undefined;
}

const sameResources = (a: PlacementRequest['resources'], b: PlacementRequest['resources']) =>
  a.vcpus === b.vcpus &&
  a.memoryMiB === b.memoryMiB &&
  a.diskGiB === b.diskGiB &&
  JSON.stringify(a.accelerators) === JSON.stringify(b.accelerators);

/**
 * Places the replicas of one workload, one after another. The first placement scans the
 * candidates (up to `limitFeasible` feasible nodes) and keeps them as a pool; later
 * replicas with the same policy and resources are chosen from that pool, re-checking only
 * what placing their siblings can change (free capacity, spread, the node a replica
 * replaces) and re-scoring only the dynamic scorers. When the pool has nothing left
 * that fits, a fresh scan starts. A Placer is meant for one pass over one workload:
 * node attributes are taken as they were at the scan.
 */
export class Placer {
  private pool: CandidateNode[] = [];
  private policy?: PlacementRequest['policy'];
  private resources?: PlacementRequest['resources'];
  private scan?: Explanation;
  private failure?: Decision;
  /** Raw values of the static scorers per pool node, computed once. */
  private readonly staticScores = new Map<string, number[]>();

  constructor(
    private readonly candidates: () => Iterable<CandidateNode>,
    private readonly opts: ScheduleOptions = {},
  ) {}

  place(req: PlacementRequest): Decision {
    if (this.scan && req.policy === this.policy && sameResources(req.resources, this.resources!)) {
      // Nothing fitted a moment ago, and placing siblings only takes room: no new scan
      // (at fleet scale a fruitless scan reads every node).
      if (!this.pool.length && this.failure) return structuredClone(this.failure);
      const feasible: number[] = [];
      for (let i = 0; i < this.pool.length; i++)
        if (!rejection(DYNAMIC_FILTERS, this.pool[i]!, req)) feasible.push(i);
      if (feasible.length) return this.pick(feasible, req, { ...this.scan, feasible: feasible.length });
    }
    return this.fresh(req);
  }

  private fresh(req: PlacementRequest): Decision {
    const explanation: Explanation = {
      nodesEvaluated: 0,
      feasible: 0,
      filtered: {},
      exhausted: {},
      topScores: [],
    };
    const feasible: CandidateNode[] = [];
    const limit = this.opts.limitFeasible ?? Number.POSITIVE_INFINITY;
    for (const n of this.candidates()) {
      explanation.nodesEvaluated++;
      const rejected = rejection(FILTERS, n, req);
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
    this.pool = feasible;
    this.policy = req.policy;
    this.resources = req.resources;
    this.scan = { ...explanation, topScores: [] };
    this.staticScores.clear();
    this.failure = undefined;
    if (!feasible.length) {
      this.failure = {
        ok: false,
        code: 'unschedulable',
        explanation,
        message: unschedulableMessage(explanation),
      };
      return structuredClone(this.failure);
    }
    return this.pick(
      feasible.map((_, i) => i),
      req,
      explanation,
    );
  }

  /** Scores the feasible pool nodes (by index) and picks the best. */
  private pick(feasible: number[], req: PlacementRequest, explanation: Explanation): Decision {
    const weights = weightsFor(req);
    // Scorers with no weight are not computed; each scorer is rescaled once over all nodes.
    const active = SCORERS.filter((s) => weights[s.name]! > 0);
    const weightSum = active.reduce((sum, s) => sum + weights[s.name]!, 0);
    const totals = new Float64Array(feasible.length);
    const columns = active.map((s) => {
      let raw: number[];
      if (s.dynamic) raw = feasible.map((i) => s.score(this.pool[i]!, req));
      else {
        let all = this.staticScores.get(s.name);
        if (!all) {
          all = this.pool.map((n) => s.score(n, req));
          this.staticScores.set(s.name, all);
        }
        raw = feasible.map((i) => all[i]!);
      }
      let min = Number.POSITIVE_INFINITY;
      let max = Number.NEGATIVE_INFINITY;
      for (const v of raw) {
        if (v < min) min = v;
        if (v > max) max = v;
      }
      const w = weights[s.name]!;
      const scaled = raw.map((v) => (max === min ? 100 : (100 * (v - min)) / (max - min)));
      for (let k = 0; k < scaled.length; k++) totals[k] = totals[k]! + scaled[k]! * w;
      return scaled;
    });
    const total = (k: number) => Math.round((weightSum ? totals[k]! / weightSum : 100) * 10) / 10;
    // Only the best few get their breakdown (the explanation's top scores).
    const top: number[] = [];
    const keep = this.opts.topScores ?? 5;
    for (let k = 0; k < feasible.length; k++) {
      let at = top.length;
      while (at > 0 && totals[k]! > totals[top[at - 1]!]!) at--;
      if (at < keep) {
        top.splice(at, 0, k);
        if (top.length > keep) top.pop();
      }
    }
    explanation.topScores = top.map((k): ScoredNode => {
      const scores: Record<string, number> = {};
      active.forEach((s, j) => {
        scores[s.name] = Math.round(columns[j]![k]! * 10) / 10;
      });
      return { node: this.pool[feasible[k]!]!.key, total: total(k), scores };
    });
    return { ok: true, node: this.pool[feasible[top[0]!]!]!, explanation };
  }
}

/** Places one replica: filters every candidate (up to the limit), scores the feasible ones. */
export function schedule(
  nodes: Iterable<CandidateNode>,
  req: PlacementRequest,
  opts: ScheduleOptions = {},
): Decision {
  return new Placer(() => nodes, opts).place(req);
}
