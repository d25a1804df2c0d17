// Building candidate nodes for tests and the simulator: plain data, real shapes.
import type { CandidateNode } from './types.js';

export function candidate(
  over: Partial<CandidateNode> & { provider?: string; node?: string } = {},
): CandidateNode {
  const provider = over.provider ?? 'p1';
  const node = over.node ?? 'n1';
  return {
    key: `${provider}/${node}`,
    provider,
    node,
    site: 's1',
    ready: true,
    unschedulable: false,
    architecture: 'x86_64',
    virtualization: 'kvm',
    cpuSecurity: [],
    accelerators: [],
    labels: {},
    capacity: { vcpus: 16, memoryMiB: 65536, diskGiB: 500 },
    allocated: { vcpus: 0, memoryMiB: 0, diskGiB: 0, accelerators: 0 },
    siteInfo: { country: 'DE', latitude: 50.11, longitude: 8.68, tier: 'regional', carbonIntensity: 380 },
    providerInfo: {
      jurisdiction: 'EU',
      euControlled: true,
      certifications: [],
      sovereigntyLevel: 'eu-controlled',
    },
    ...over,
  };
}
