// Filters on the node itself: pinning, replacement, readiness, cordon.
import { REASONS } from '../reasons.js';
import type { Filter } from '../types.js';

/** placement.node pins a workload to one node ("provider/node"). */
export const pinned: Filter = {
  name: 'pinned',
  check: (n, r) => (r.policy.node && r.policy.node !== n.key ? REASONS.pinned : undefined),
};

/** A replacement never goes back to the node it replaces. */
export const avoided: Filter = {
  name: 'avoided',
  dynamic: true,
  check: (n, r) => (r.avoid?.has(n.key) ? REASONS.avoided : undefined),
};

// Readiness and cordons are dynamic: they change with a node's health and its operator's
// word, which must not undo the static verdicts of every class (see StaticClasses).
export const ready: Filter = {
  name: 'ready',
  dynamic: true,
  check: (n) => (n.ready ? undefined : REASONS.notReady),
};

export const schedulable: Filter = {
  name: 'schedulable',
  dynamic: true,
  check: (n) => (n.unschedulable ? REASONS.cordoned : undefined),
};
