// Filters on the node's hardware: architecture, KVM, containers, confidential computing, labels.
import { REASONS } from '../reasons.js';
import type { Filter } from '../types.js';

export const architecture: Filter = {
  name: 'architecture',
  check: (n, r) =>
    (r.policy.architecture ?? 'x86_64') !== n.architecture ? REASONS.architecture : undefined,
};

export const virtualization: Filter = {
  name: 'virtualization',
  check: (n, r) =>
    r.policy.virtualization === 'kvm' && n.virtualization !== 'kvm' ? REASONS.noKvm : undefined,
};

export const containers: Filter = {
  name: 'containers',
  check: (n, r) => (r.kind === 'container' && !n.containers ? REASONS.noContainers : undefined),
};

export const confidential: Filter = {
  name: 'confidential',
  check: (n, r) => {
    const need = r.policy.confidentialComputing;
    if (!need) return undefined;
    const ok = need === 'any' ? n.cpuSecurity.length > 0 : n.cpuSecurity.includes(need);
    return ok ? undefined : REASONS.confidential;
  },
};

export const labels: Filter = {
  name: 'labels',
  check: (n, r) => {
    for (const [k, v] of Object.entries(r.policy.nodeSelector ?? {}))
      if (n.labels[k] !== v) return REASONS.labels;
    return undefined;
  },
};
