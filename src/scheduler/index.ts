export { RULE_FILTERS, violations } from './compliance.js';
export { domainOf } from './filters/spread.js';
export {
  estimateRttMs,
  FIBRE_KM_PER_MS,
  greatCircleKm,
  minimumRttMs,
  PATH_STRETCH,
  rttMs,
  TIER_OVERHEAD_MS,
} from './latency.js';
export {
  FILTERS,
  Placer,
  type ScheduleOptions,
  StaticClasses,
  schedule,
  unschedulableMessage,
} from './pipeline.js';
export { DIMENSIONS, REASONS, type Reason } from './reasons.js';
export { SCORERS } from './scorers/index.js';
export type {
  CandidateNode,
  Capacity,
  Decision,
  Explanation,
  Filter,
  NodeAccelerator,
  PlacementRequest,
  Resources,
  ScoredNode,
  Scorer,
} from './types.js';
