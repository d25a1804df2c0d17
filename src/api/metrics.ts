// Prometheus metrics of one control-plane process, on its own registry so that several
// servers in one process (tests) do not collide.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry, Summary } from 'prom-client';
import { AUTH_KINDS, type AuthFailureLimiter } from '../auth/index.js';
import { RESOURCE_TABLES, type Store } from '../store/index.js';

export interface ApiMetrics {
  registry: Registry;
  agentHeartbeats: Counter<string>;
  placements: Counter<string>;
  placementSeconds: Summary<string>;
  placementQueueSeconds: Summary<string>;
  requests: Counter<'method' | 'route' | 'status'>;
  duration: Histogram<'method' | 'route'>;
  events: Counter<'kind' | 'action'>;
}

const RESOURCE_COUNT_TTL_MS = 10_000;

export function createMetrics(store: Store): ApiMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'continuum_' });
  // These walk every handle or file descriptor of the process on each scrape: with an
  // agent connection per node that is tens of thousands at fleet scale, for figures that
  // continuum_agents_connected already gives.
  for (const costly of [
    'nodejs_active_handles',
    'nodejs_active_handles_total',
    'nodejs_active_resources',
    'nodejs_active_resources_total',
    'process_open_fds',
  ])
    registry.removeSingleMetric(`continuum_${costly}`);
  const requests = new Counter({
    name: 'continuum_http_requests_total',
    help: 'HTTP requests served, by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'continuum_http_request_duration_seconds',
    help: 'HTTP request latency',
    labelNames: ['method', 'route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const events = new Counter({
    name: 'continuum_events_total',
    help: 'audit events committed',
    labelNames: ['kind', 'action'] as const,
    registers: [registry],
  });
  // Counted at most every RESOURCE_COUNT_TTL_MS: a count walks each table's index.
  let counted = Number.NEGATIVE_INFINITY;
  new Gauge({
    name: 'continuum_resources',
    help: `stored objects by kind (counted at most every ${RESOURCE_COUNT_TTL_MS / 1000} s)`,
    labelNames: ['kind'] as const,
    registers: [registry],
    async collect() {
      if (performance.now() - counted < RESOURCE_COUNT_TTL_MS) return;
      counted = performance.now();
      for (const table of RESOURCE_TABLES) this.set({ kind: table }, await store.count(table));
    },
  });
  const agentHeartbeats = new Counter({
    name: 'continuum_agent_heartbeats_total',
    help: 'heartbeats received from node agents',
    registers: [registry],
  });
  const placements = new Counter({
    name: 'continuum_placements_total',
    help: 'replicas bound to a node by the scheduler (placed or re-placed)',
    registers: [registry],
  });
  // Summaries, not histograms: operators and the benchmark read p50/p99 directly.
  const summary = { percentiles: [0.5, 0.9, 0.99], maxAgeSeconds: 600, ageBuckets: 5, registers: [registry] };
  const placementSeconds = new Summary({
    name: 'continuum_placement_seconds',
    help: 'per workload pass that bound replicas: from the controller taking the workload up to the commit',
    ...summary,
  });
  const placementQueueSeconds = new Summary({
    name: 'continuum_placement_queue_seconds',
    help: 'per workload pass that bound replicas: how long the workload waited for the controller',
    ...summary,
  });
  store.committed.on('event', (e) => events.inc({ kind: e.kind, action: e.action }));
  return {
    registry,
    requests,
    duration,
    events,
    agentHeartbeats,
    placements,
    placementSeconds,
    placementQueueSeconds,
  };
}

/** Failed and refused (429) authentications, by kind of credential. */
export function registerAuthMetrics(registry: Registry, limiter: AuthFailureLimiter): void {
  new Gauge({
    name: 'continuum_auth_failures_total',
    help: 'failed authentications (unknown, revoked or expired secrets), by kind of credential',
    labelNames: ['kind'] as const,
    registers: [registry],
    collect() {
      for (const kind of AUTH_KINDS) this.set({ kind }, limiter.failures[kind]);
    },
  });
  new Gauge({
    name: 'continuum_auth_throttled_total',
    help: 'requests refused with 429 after too many failed authentications from their source',
    labelNames: ['kind'] as const,
    registers: [registry],
    collect() {
      for (const kind of AUTH_KINDS) this.set({ kind }, limiter.throttled[kind]);
    },
  });
}
