import { randomUUID } from 'node:crypto';
// Manifests used across tests, in the same format users write.
export const provider = (name: string, over: object = {}) => ({
  kind: 'Provider',
  metadata: { name },
  spec: { headquarters: 'DE', jurisdiction: 'EU', euControlled: true, certifications: ['ISO27001'], ...over },
});

export const site = (provider: string, name: string, over: object = {}) => ({
  kind: 'Site',
  metadata: { name, provider },
  spec: {
    country: 'DE',
    region: 'Hesse',
    location: { latitude: 50.11, longitude: 8.68 },
    tier: 'regional',
    carbonIntensity: 380,
    prices: { vcpuHour: 0.02, memoryGbHour: 0.003 },
    ...over,
  },
});

export const project = (name: string, quota?: object) => ({
  kind: 'Project',
  metadata: { name },
  spec: { displayName: name, ...(quota ? { quota } : {}) },
});

export const workload = (project: string, name: string, over: object = {}) => ({
  kind: 'Workload',
  metadata: { name, project },
  spec: { kind: 'vm', image: 'testvm', replicas: 1, resources: { vcpus: 1, memoryMiB: 256 }, ...over },
});

export const image = (project: string, name: string, sha256: string) => ({
  kind: 'Image',
  metadata: { name, project },
  spec: { format: 'raw', files: { disk: { sha256 } } },
});

/** An instance row as the workload controller writes it (bound, desired running, pending). */
export const instanceRecord = (
  project: string,
  name: string,
  over: { workload?: string; provider?: string; node?: string; ordinal?: number; userData?: string } = {},
) => {
  const now = new Date().toISOString();
  return {
    uid: randomUUID(),
    project,
    name,
    workload: over.workload ?? 'w',
    ordinal: over.ordinal ?? 0,
    provider: over.provider ?? 'p',
    node: over.node ?? 'n',
    fence: 1,
    revision: 1,
    desired: 'running' as const,
    vcpus: 1,
    memoryMiB: 256,
    diskGiB: 1,
    spec: {
      hostname: name,
      image: { project, name: 'img', format: 'raw' as const, files: {} },
      ports: [],
      ...(over.userData !== undefined ? { userData: over.userData } : {}),
    },
    status: { phase: 'Pending' as const, ports: [], restarts: 0, observedRevision: 0 },
    createdAt: now,
    updatedAt: now,
  };
};
