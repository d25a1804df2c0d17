// Table columns per kind for `continuum get`.
import { progressLine } from './commands/migrate.js';
import { age } from './output.js';

type Obj = { metadata: any; spec: any; status: any };
type Column = [header: string, value: (o: Obj) => string];

const name: Column = ['NAME', (o) => o.metadata.name];
const created: Column = ['AGE', (o) => age(o.metadata.createdAt)];

const list = (v: unknown) => (Array.isArray(v) && v.length ? v.join(',') : '-');
const usage = (used: number, quota: number | undefined) => `${used}/${quota ?? '∞'}`;

export const COLUMNS: Record<string, Column[]> = {
  Provider: [
    name,
    ['HQ', (o) => o.spec.headquarters],
    ['JURISDICTION', (o) => o.spec.jurisdiction],
    ['EU-CONTROLLED', (o) => (o.spec.euControlled ? 'yes' : 'no')],
    ['SOVEREIGNTY', (o) => o.status.sovereigntyLevel],
    ['CERTIFICATIONS', (o) => list(o.spec.certifications)],
    created,
  ],
  Site: [
    ['PROVIDER', (o) => o.metadata.provider],
    name,
    ['COUNTRY', (o) => o.spec.country],
    ['REGION', (o) => o.spec.region ?? '-'],
    ['TIER', (o) => o.spec.tier],
    ['LAT,LON', (o) => `${o.spec.location.latitude},${o.spec.location.longitude}`],
    ['gCO2/kWh', (o) => String(o.spec.carbonIntensity)],
    created,
  ],
  Node: [
    ['PROVIDER', (o) => o.metadata.provider],
    name,
    ['SITE', (o) => o.spec.site],
    [
      'STATE',
      (o) =>
        o.spec.drain
          ? `${o.status.state},draining`
          : o.spec.unschedulable
            ? `${o.status.state},cordoned`
            : o.status.state,
    ],
    ['ARCH', (o) => o.status.inventory?.architecture ?? '-'],
    ['CPUS', (o) => String(o.status.inventory?.cpus ?? '-')],
    ['MEMORY', (o) => (o.status.inventory ? `${o.status.inventory.memoryMiB}Mi` : '-')],
    created,
  ],
  Project: [
    name,
    ['VCPUS', (o) => usage(o.status.usage.vcpus, o.spec.quota?.vcpus)],
    ['MEMORY(MiB)', (o) => usage(o.status.usage.memoryMiB, o.spec.quota?.memoryMiB)],
    ['INSTANCES', (o) => usage(o.status.usage.instances, o.spec.quota?.instances)],
    created,
  ],
  User: [
    name,
    [
      'ROLES',
      (o) =>
        o.spec.roles
          .map((b: any) => [b.role, b.provider ?? b.project].filter(Boolean).join(':'))
          .join(', ') || '-',
    ],
    created,
  ],
  Image: [
    ['PROJECT', (o) => o.metadata.project],
    name,
    ['FORMAT', (o) => o.spec.format],
    ['ARCH', (o) => o.spec.architecture ?? 'x86_64'],
    ['PHASE', (o) => o.status.phase],
    created,
  ],
  Workload: [
    ['PROJECT', (o) => o.metadata.project],
    name,
    ['KIND', (o) => o.spec.kind],
    ['REPLICAS', (o) => `${o.status.readyReplicas}/${o.spec.replicas}`],
    ['VCPUS', (o) => String(o.spec.resources.vcpus)],
    ['MEMORY', (o) => `${o.spec.resources.memoryMiB}Mi`],
    ['PHASE', (o) => o.status.phase],
    created,
  ],
  Migration: [
    ['PROJECT', (o) => o.metadata.project],
    name,
    ['INSTANCE', (o) => o.spec.instance],
    ['FROM', (o) => o.status.from ?? '-'],
    ['TO', (o) => o.status.target ?? o.spec.to?.node ?? o.spec.to?.site ?? o.spec.to?.provider ?? '-'],
    ['MODE', (o) => o.status.mode ?? o.spec.mode ?? '-'],
    ['PROGRESS', (o) => progressLine(o.status, 10)],
    ['DOWNTIME', (o) => (o.status.downtimeMs !== undefined ? `${o.status.downtimeMs}ms` : '-')],
    created,
  ],
  SwitchingRequest: [
    ['PROJECT', (o) => o.metadata.project],
    name,
    ['FROM', (o) => o.spec.from],
    ['TO', (o) => o.spec.to.provider ?? `outside (${o.spec.to.outside})`],
    ['PHASE', (o) => o.status.phase],
    ['NEXT DEADLINE', (o) => nextDeadline(o.status)],
    ['MISSED', (o) => list(o.status.missed)],
    created,
  ],
};

/** The deadline a switching request's phase runs to. */
export function nextDeadline(st: any): string {
  const at: Record<string, [string, string | undefined]> = {
    Notice: ['transition starts', st.noticeEndsAt],
    Transition: ['transition ends', st.transitionEndsAt],
    Retrieval: ['erasure', st.retrievalEndsAt],
    Erasure: ['erasing', undefined],
    Completed: ['erased', st.erasedAt],
  };
  const [what, when] = at[st.phase] ?? ['-', undefined];
  return when ? `${what} ${when.slice(0, 16).replace('T', ' ')}` : what;
}
