// Why a node is rejected: stable strings that tests, the CLI and the console match on.
export const REASONS = {
  pinned: 'not the pinned node',
  avoided: 'node being replaced',
  notReady: 'node not ready',
  cordoned: 'node cordoned or draining',
  architecture: 'architecture mismatch',
  noKvm: 'missing kvm',
  noContainers: 'runs no containers',
  confidential: 'no confidential computing',
  labels: 'node labels do not match',
  accelerator: 'no matching accelerator',
  resources: 'resources exhausted',
  country: 'country not allowed',
  site: 'site not allowed',
  jurisdiction: 'provider jurisdiction not allowed',
  euControl: 'provider not EU-controlled',
  sovereignty: 'provider sovereignty too low',
  certification: 'provider lacks a required certification',
  sovereigntyScore: 'provider sovereignty score too low',
  seal: 'provider SEAL level too low',
  subcontractors: 'provider has subcontractors elsewhere',
  gaiaX: 'provider lacks the Gaia-X label level',
  providerDenied: 'provider not allowed',
  latency: 'too far from users',
  spread: 'spread: domain already used',
} as const;
export type Reason = (typeof REASONS)[keyof typeof REASONS];

export const DIMENSIONS = ['vcpus', 'memoryMiB', 'diskGiB', 'accelerators'] as const;
export type Dimension = (typeof DIMENSIONS)[number];
