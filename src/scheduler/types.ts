// What the scheduler sees and decides. It works on a read-only snapshot of candidate
// nodes (with their site and provider) and returns a decision with its explanation;
// a separate applier writes the binding.
import type { PlacementPolicy, SiteTier, SovereigntyLevel } from '../model/index.js';

export interface Resources {
  vcpus: number;
  memoryMiB: number;
  diskGiB: number;
  accelerators?: { vendor?: string; model?: string; minMemoryMiB?: number; count: number };
}

export interface Capacity {
  vcpus: number;
  memoryMiB: number;
  diskGiB: number;
}

export interface NodeAccelerator {
  vendor: string;
  model: string;
  memoryMiB?: number;
  count: number;
}

/** One candidate node with everything filters and scorers look at. */
export interface CandidateNode {
  readonly key: string;
  readonly provider: string;
  readonly node: string;
  readonly site: string;
  readonly ready: boolean;
  readonly unschedulable: boolean;
  /** Drained: its replicas are to move elsewhere (the node's spec says so, not its health). */
  readonly draining?: boolean;
  readonly architecture: string;
  readonly virtualization: 'kvm' | 'emulation';
  /** It runs OCI containers (runc on the node). */
  readonly containers?: boolean;
  /** It sends and receives live migrations. */
  readonly liveMigration?: boolean;
  /** Its runtime can move a stopped instance's disk (cold migration). */
  readonly coldMigration?: boolean;
  readonly cpuSecurity: readonly string[];
  readonly accelerators: readonly NodeAccelerator[];
  readonly labels: Readonly<Record<string, string>>;
  /** What capacity.vcpus is made of: physical CPUs times the site's overcommit. */
  readonly host?: { readonly cpus: number; readonly cpuOvercommit: number };
  readonly capacity: Capacity;
  /** Resources already bound to the node (kept current by the scheduler's cache). */
  readonly allocated: Capacity & { accelerators: number };
  readonly siteInfo: {
    country: string;
    latitude: number;
    longitude: number;
    tier: SiteTier;
    carbonIntensity: number;
    prices?: { vcpuHour: number; memoryGbHour: number };
    /** Measured round-trip times to named user locations, when agents reported them. */
    measuredRttMs?: Readonly<Record<string, number>>;
  };
  readonly providerInfo: {
    jurisdiction: 'EU' | 'non-EU';
    euControlled: boolean;
    /** Valid now (the cluster cache rebuilds the node when one expires). */
    certifications: readonly string[];
    sovereigntyLevel: SovereigntyLevel;
    /** From the provider's sovereignty record, when it has one. */
    record?: {
      score: number;
      seal: Readonly<Record<string, number>>;
      /** Countries of its subcontractors with access to customer data or IAM. */
      subcontractorCountries: readonly string[];
      /** Gaia-X label level valid now (0: none). */
      gaiaX: number;
    };
  };
}

/** One replica to place. `spreadCounts` holds how many replicas of the workload each domain already has. */
export interface PlacementRequest {
  readonly workload: string;
  /** What runs: a VM (default) or a container, which needs a node that runs containers. */
  readonly kind?: 'vm' | 'container';
  readonly policy: PlacementPolicy;
  readonly resources: Resources;
  readonly spreadCounts: ReadonlyMap<string, number>;
  /** Nodes this replica must avoid (e.g. the failed node it is replacing). */
  readonly avoid?: ReadonlySet<string>;
}

export interface ScoredNode {
  node: string;
  total: number;
  scores: Record<string, number>;
  /** Its capacity in words before this replica: "vCPU 4/16 (4 CPUs, overcommit 4:1), memory 2048/7680 MiB". */
  room?: string;
}

export interface Explanation {
  nodesEvaluated: number;
  feasible: number;
  filtered: Record<string, number>;
  exhausted: Record<string, number>;
  topScores: ScoredNode[];
}

export type Decision =
  | { ok: true; node: CandidateNode; explanation: Explanation }
  | { ok: false; code: 'unschedulable'; explanation: Explanation; message: string };

export interface Filter {
  readonly name: string;
  /**
   * The answer can change while one workload's replicas are placed (capacity, spread,
   * the node being replaced); other filters depend only on the node and the policy.
   */
  readonly dynamic?: boolean;
  /** Returns a reason constant when the node is rejected, undefined when it passes. */
  check(node: CandidateNode, req: PlacementRequest): string | undefined;
}

export interface Scorer {
  readonly name: string;
  /** The value changes as replicas are placed (free capacity, spread counts). */
  readonly dynamic?: boolean;
  /** Default weight when the policy sets none. */
  readonly defaultWeight: number;
  /** 0–100; higher is better. */
  score(node: CandidateNode, req: PlacementRequest): number;
}
