// A provider's sovereignty record, as the EU Cloud Sovereignty Framework measures it:
// eight sovereignty objectives, each with a SEAL level 0–4 and its evidence, weighted
// into a score of 0–100 (weights in data/sovereignty-weights.json, which a federation
// administrator may replace); certifications and the Gaia-X label count only while they
// are valid.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FieldError } from './problem.js';

export const OBJECTIVES = [
  'strategic',
  'legal',
  'data',
  'operational',
  'supplyChain',
  'technology',
  'security',
  'environment',
] as const;
export type Objective = (typeof OBJECTIVES)[number];
export const MAX_SEAL = 4;

export interface Framework {
  objectives: Record<Objective, { name: string; weight: number }>;
}

/** What a file of weights gets wrong; empty when it is a framework. */
export function frameworkErrors(doc: unknown): FieldError[] {
  const objectives = (doc as { objectives?: Record<string, unknown> } | null)?.objectives;
  if (!objectives || typeof objectives !== 'object')
    return [
      { path: 'objectives', message: `an object with the eight objectives (${OBJECTIVES.join(', ')})` },
    ];
  const errors: FieldError[] = [];
  for (const k of Object.keys(objectives))
    if (!(OBJECTIVES as readonly string[]).includes(k))
      errors.push({
        path: `objectives.${k}`,
        message: `unknown objective (known: ${OBJECTIVES.join(', ')})`,
      });
  let sum = 0;
  for (const k of OBJECTIVES) {
    const o = objectives[k] as { name?: unknown; weight?: unknown } | undefined;
    if (!o) {
      errors.push({ path: `objectives.${k}`, message: 'is missing' });
      continue;
    }
    if (typeof o.name !== 'string' || !o.name)
      errors.push({ path: `objectives.${k}.name`, message: 'a name is required' });
    if (typeof o.weight !== 'number' || !Number.isFinite(o.weight) || o.weight < 0)
      errors.push({ path: `objectives.${k}.weight`, message: 'a percentage of 0 or more' });
    else sum += o.weight;
  }
  if (!errors.length && Math.abs(sum - 100) > 1e-9)
    errors.push({ path: 'objectives', message: `the weights sum to ${sum} %, not 100 %` });
  return errors;
}

/** Reads and checks a file of weights; throws with every mistake in it. */
export function loadFramework(path: string): Framework {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`sovereignty weights ${path}: ${(err as Error).message}`);
  }
  const errors = frameworkErrors(doc);
  if (errors.length)
    throw new Error(
      `sovereignty weights ${path}: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`,
    );
  return doc as Framework;
}

/** The shipped weights: data/sovereignty-weights.json of the installation. */
export function defaultFrameworkPath(): string {
  // dist/src/model → the repository root is three levels up; src/model two.
  for (const rel of ['../../../data/sovereignty-weights.json', '../../data/sovereignty-weights.json']) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    try {
      readFileSync(path);
      return path;
    } catch {}
  }
  throw new Error('data/sovereignty-weights.json not found next to the installation');
}

let current: Framework | undefined;

/** The framework in force (the shipped weights unless the server was given others). */
export function framework(): Framework {
  current ??= loadFramework(defaultFrameworkPath());
  return current;
}

export function useFramework(f: Framework): void {
  current = f;
}

export interface SovereigntyRecord {
  legalSeat: string;
  ultimateParent?: { name: string; country: string };
  nonEuControl: boolean;
  subcontractors?: { name: string; country: string; access: ('customer-data' | 'iam')[] }[];
  certifications?: { name: string; expires: string }[];
  gaiaX?: { level: 1 | 2 | 3; expires: string };
  foreignAccessMeasures?: string;
  objectives?: Partial<Record<Objective, { seal: number; evidence?: string }>>;
}

export interface Contribution {
  objective: Objective;
  name: string;
  weight: number;
  seal: number;
  /** Points of the score (weight × seal / 4). */
  points: number;
}

/** The weighted score (0–100) and what each objective contributes to it. */
export function sovereigntyScore(
  record: SovereigntyRecord | undefined,
  f: Framework = framework(),
): { score: number; contributions: Contribution[] } {
  const contributions = OBJECTIVES.map((objective) => {
    const seal = record?.objectives?.[objective]?.seal ?? 0;
    const { name, weight } = f.objectives[objective];
    return { objective, name, weight, seal, points: (weight * seal) / MAX_SEAL };
  });
  const score = contributions.reduce((s, c) => s + c.points, 0);
  return { score: Math.round(score * 10) / 10, contributions };
}

/**
 * The last valid moment (ms): a day is valid through its end (UTC), a time until then.
 * NaN for what is not a real day or time.
 */
export function expiryOf(expires: string): number {
  if (expires.includes('T')) return Date.parse(expires);
  const end = Date.parse(`${expires}T23:59:59.999Z`);
  // Date.parse rolls 2026-02-30 over to March: a day must read back as itself.
  if (Number.isNaN(end)) return end;
  return new Date(end).toISOString().slice(0, 10) === expires ? end : Number.NaN;
}

export const isValid = (expires: string, now: number) => now <= expiryOf(expires);

/** The certifications valid at `now`: the record's unexpired ones, or the plain list of an older spec. */
export function validCertifications(
  spec: { certifications?: readonly string[]; sovereignty?: SovereigntyRecord },
  now: number,
): string[] {
  const records = spec.sovereignty?.certifications;
  if (!records) return [...(spec.certifications ?? [])];
  return records.filter((c) => isValid(c.expires, now)).map((c) => c.name);
}

export function validGaiaX(record: SovereigntyRecord | undefined, now: number): number {
  return record?.gaiaX && isValid(record.gaiaX.expires, now) ? record.gaiaX.level : 0;
}

/** The next moment something of the record expires, after `now` (ms), if any. */
export function nextExpiry(record: SovereigntyRecord | undefined, now: number): number | undefined {
  const ends = [
    ...(record?.certifications ?? []).map((c) => c.expires),
    ...(record?.gaiaX ? [record.gaiaX.expires] : []),
  ]
    .map((d) => expiryOf(d) + 1)
    .filter((t) => t > now);
  return ends.length ? Math.min(...ends) : undefined;
}
