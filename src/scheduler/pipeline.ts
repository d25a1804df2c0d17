// The placement pipeline: filters in cost order (cheap checks first, each rejection
// counted under its reason), then weighted scorers over the feasible nodes.
import { acceleratorModel, exhaustedDimension, fits } from './filters/capacity.js';
import { architecture, confidential, containers, labels, virtualization } from './filters/hardware.js';
import { latency as latencyFilter } from './filters/latency.js';
import { avoided, pinned, ready, schedulable } from './filters/node.js';
import {
  certifications,
  countries,
  euControl,
  gaiaX,
  jurisdiction,
  providers,
  seal,
  sites,
  sovereignty,
  sovereigntyScore,
  subcontractors,
} from './filters/sovereignty.js';
import { spread as spreadFilter } from './filters/spread.js';
import { REASONS } from './reasons.js';
import { SCORERS } from './scorers/index.js';
import type {
  CandidateNode,
  Decision,
  Explanation,
  Filter,
  PlacementRequest,
  ScoredNode,
  Scorer,
} from './types.js';

// Static filters first, then the dynamic ones: the order in which a node's rejection is
// counted is the same whether a placement judges it whole or through its class.
export const FILTERS: readonly Filter[] = [
  pinned, // a pinned workload considers one node only
  providers, // tenant's allow and deny lists
  countries, // data residency
  sites, // named sites only
  jurisdiction, // provider's legal jurisdiction
  euControl, // provider controlled from the EU
  sovereignty, // derived sovereignty level
  certifications, // every required certification, valid today
  sovereigntyScore, // the provider's weighted sovereignty score
  seal, // SEAL level per sovereignty objective
  subcontractors, // where the provider's subcontractors with access are
  gaiaX, // Gaia-X label level, valid today
  architecture, // x86_64, aarch64, riscv64
  virtualization, // KVM when the policy needs it
  containers, // runc, for a container
  confidential, // SEV-SNP / TDX
  labels, // node selector
  acceleratorModel, // the right kind of accelerator at all
  latencyFilter, // every user location within its round-trip budget (a few trig calls)
  avoided, // never back onto the node being replaced
  ready, // heartbeating nodes only
  schedulable, // not cordoned or draining
  spreadFilter, // hard spread over providers, sites or countries
  fits, // free capacity, last: it depends on what was placed a moment ago
];

export interface ScheduleOptions {
  /** Stop after this many feasible nodes (Nomad-style limit) to bound the cost at scale. */
  limitFeasible?: number;
  topScores?: number;
  /**
   * Static filter results shared between placements, valid while the candidates'
   * attributes stay at `version` (see StaticClasses).
   */
  classes?: { cache: StaticClasses; version: number };
}

/** The nodes of one class of requests that pass every static filter, in scan order. */
interface StaticClass {
  readonly nodes: readonly CandidateNode[];
  readonly evaluated: number;
  readonly filtered: Readonly<Record<string, number>>;
}

/** Most classes kept at once; more (an unusual variety of policies) start the set anew. */
const MAX_CLASSES = 512;

/**
 * Requests with the same static rules (the whole policy and the accelerator asked for)
 * form a class, as in Borg's equivalence classes: the static filters — residency,
 * sovereignty, hardware, labels, latency — give the same answer for every request of a
 * class, so they run over the fleet once per class, and a placement scans only the
 * class's nodes with the dynamic filters (readiness, cordons, capacity, spread, the node
 * replaced). Any change of a node's, site's or provider's attributes must come with a
 * new version (the cluster cache counts them); health, cordons and capacity need none.
 */
export class StaticClasses {
  private version = -1;
  private readonly classes = new Map<string, StaticClass>();

  lookup(req: PlacementRequest, version: number, candidates: () => Iterable<CandidateNode>): StaticClass {
    if (version !== this.version || this.classes.size >= MAX_CLASSES) {
      this.classes.clear();
      this.version = version;
    }
    const key = JSON.stringify([req.policy, req.resources.accelerators ?? null, req.kind ?? 'vm']);
    let c = this.classes.get(key);
    if (!c) {
      const nodes: CandidateNode[] = [];
      const filtered: Record<string, number> = {};
      let evaluated = 0;
      for (const n of candidates()) {
        evaluated++;
        const rejected = rejection(STATIC_FILTERS, n, req);
        if (rejected) filtered[rejected] = (filtered[rejected] ?? 0) + 1;
        else nodes.push(n);
      }
      c = { nodes, evaluated, filtered };
      this.classes.set(key, c);
    }
    return c;
  }
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
const STATIC_FILTERS = FILTERS.filter((f) => !f.dynamic);

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

/** Counts a node under the reason it was rejected for (and the dimension that ran out). */
function countRejection(e: Explanation, n: CandidateNode, req: PlacementRequest, reason: string): void {
  e.filtered[reason] = (e.filtered[reason] ?? 0) + 1;
  if (reason === REASONS.resources) {
    const d = exhaustedDimension(n, req)!;
    e.exhausted[d] = (e.exhausted[d] ?? 0) + 1;
  }
}

/** The scorers a policy weighs, with their weights, fixed for one scan's pool. */
interface Scoring {
  readonly active: readonly Scorer[];
  readonly weights: Float64Array;
  readonly weightSum: number;
  /** Raw value of each active scorer (row) for each pool node (column). */
  readonly raw: Float64Array[];
  readonly min: Float64Array;
  readonly max: Float64Array;
}

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
  private scoring?: Scoring;

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
      // The scan's verdicts, with the pool nodes that siblings have filled since.
      const explanation = explanationOf(this.scan);
      for (let i = 0; i < this.pool.length; i++) {
        const rejected = rejection(DYNAMIC_FILTERS, this.pool[i]!, req);
        if (rejected) countRejection(explanation, this.pool[i]!, req, rejected);
        else feasible.push(i);
      }
      explanation.feasible = feasible.length;
      if (feasible.length) return this.pick(feasible, req, explanation);
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
    const classes = this.opts.classes;
    if (classes && !req.policy.node) {
      // Every node was judged by the static rules (once for the class); the class's nodes
      // are scanned from a random start with the dynamic ones. Evaluated are the nodes
      // with a verdict — the static rejections and those scanned — as without classes,
      // so that evaluated = feasible + filtered.
      const c = classes.cache.lookup(req, classes.version, this.candidates);
      explanation.nodesEvaluated = c.evaluated - c.nodes.length;
      Object.assign(explanation.filtered, c.filtered);
      const count = c.nodes.length;
      const start = Math.floor(Math.random() * count);
      for (let i = 0; i < count && feasible.length < limit; i++) {
        explanation.nodesEvaluated++;
        const n = c.nodes[(start + i) % count]!;
        const rejected = rejection(DYNAMIC_FILTERS, n, req);
        if (rejected) countRejection(explanation, n, req, rejected);
        else feasible.push(n);
      }
    } else {
      for (const n of this.candidates()) {
        explanation.nodesEvaluated++;
        const rejected = rejection(FILTERS, n, req);
        if (rejected) {
          countRejection(explanation, n, req, rejected);
          continue;
        }
        feasible.push(n);
        if (feasible.length >= limit) break;
      }
    }
    explanation.feasible = feasible.length;
    this.pool = feasible;
    this.policy = req.policy;
    this.resources = req.resources;
    this.scan = explanationOf(explanation);
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
    this.scoring = scoringFor(req, feasible);
    return this.pick(
      feasible.map((_, i) => i),
      req,
      explanation,
    );
  }

  /**
   * Scores the feasible pool nodes (by index) and picks the best: each active scorer is
   * rescaled to 0–100 over the feasible nodes and weighed; ties go to the earlier node.
   * Static scorers were computed at the scan; dynamic ones are computed again here.
   */
  private pick(feasible: readonly number[], req: PlacementRequest, explanation: Explanation): Decision {
    const { active, weights, weightSum, raw, min, max } = this.scoring!;
    for (let j = 0; j < active.length; j++) {
      const s = active[j]!;
      const col = raw[j]!;
      let lo = Number.POSITIVE_INFINITY;
      let hi = Number.NEGATIVE_INFINITY;
      for (const i of feasible) {
        if (s.dynamic) col[i] = s.score(this.pool[i]!, req);
        const v = col[i]!;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      min[j] = lo;
      max[j] = hi;
    }
    const scaled = (j: number, i: number) =>
      max[j] === min[j] ? 100 : (100 * (raw[j]![i]! - min[j]!)) / (max[j]! - min[j]!);
    // Only the best few are kept, with their totals (the explanation's top scores).
    const keep = Math.max(1, this.opts.topScores ?? 5);
    const top: number[] = [];
    const topTotals: number[] = [];
    for (const i of feasible) {
      let total = 0;
      for (let j = 0; j < active.length; j++) total += scaled(j, i) * weights[j]!;
      let at = top.length;
      while (at > 0 && total > topTotals[at - 1]!) at--;
      if (at < keep) {
        top.splice(at, 0, i);
        topTotals.splice(at, 0, total);
        if (top.length > keep) {
          top.pop();
          topTotals.pop();
        }
      }
    }
    explanation.topScores = top.map((i, rank): ScoredNode => {
      const scores: Record<string, number> = {};
      for (let j = 0; j < active.length; j++) scores[active[j]!.name] = Math.round(scaled(j, i) * 10) / 10;
      const total = Math.round((weightSum ? topTotals[rank]! / weightSum : 100) * 10) / 10;
      const n = this.pool[i]!;
      return { node: n.key, total, scores, room: roomOf(n) };
    });
    return { ok: true, node: this.pool[top[0]!]!, explanation };
  }
}

/**
 * A copy of a scan's verdicts, without its top scores. Spelled out: on Node 20 a property
 * written after a spread (`{ ...e, topScores: [] }`) costs ~1.5 µs, once per placement.
 */
function explanationOf(e: Explanation): Explanation {
  return {
    nodesEvaluated: e.nodesEvaluated,
    feasible: e.feasible,
    filtered: { ...e.filtered },
    exhausted: { ...e.exhausted },
    topScores: [],
  };
}

/** A node's capacity and what is bound to it, in the explanation's words. */
export function roomOf(n: CandidateNode): string {
  const { capacity: c, allocated: a, host } = n;
  const cpus = host ? ` (${host.cpus} CPUs, overcommit ${host.cpuOvercommit}:1)` : '';
  return `vCPU ${a.vcpus}/${c.vcpus}${cpus}, memory ${a.memoryMiB}/${c.memoryMiB} MiB`;
}

/** The weighed scorers of a request's policy, with the static ones computed for the pool. */
function scoringFor(req: PlacementRequest, pool: readonly CandidateNode[]): Scoring {
  const w = weightsFor(req);
  // Scorers with no weight are not computed.
  const active = SCORERS.filter((s) => w[s.name]! > 0);
  const raw = active.map((s) => {
    const col = new Float64Array(pool.length);
    if (!s.dynamic) for (let i = 0; i < pool.length; i++) col[i] = s.score(pool[i]!, req);
    return col;
  });
  const weights = Float64Array.from(active, (s) => w[s.name]!);
  return {
    active,
    weights,
    weightSum: weights.reduce((sum, x) => sum + x, 0),
    raw,
    min: new Float64Array(active.length),
    max: new Float64Array(active.length),
  };
}

/** Places one replica: filters every candidate (up to the limit), scores the feasible ones. */
export function schedule(
  nodes: Iterable<CandidateNode>,
  req: PlacementRequest,
  opts: ScheduleOptions = {},
): Decision {
  return new Placer(() => nodes, opts).place(req);
}
