// What both benchmarks share: the size options, and the mix of placement policies they
// place — residency, sovereignty with carbon/cost weights, latency to a city, hard spread
// over providers, packing, and none.
import { type Agent, get } from 'node:http';
import { parseArgs } from 'node:util';
import { rng } from '../src/sim/index.js';

type Options = NonNullable<Parameters<typeof parseArgs>[0]>['options'];

/** Parses the fleet size options (and any extra ones); every value a whole number. */
export function benchArgs(extra: Options = {}): Record<string, number> {
  return benchOptions(extra).numbers;
}

/** As benchArgs, but the options named in `textKeys` are returned as given, in `text`. */
export function benchOptions(
  extra: Options = {},
  textKeys: readonly string[] = [],
): { numbers: Record<string, number>; text: Record<string, string | undefined> } {
  const options: Options = {
    nodes: { type: 'string', default: '10000' },
    providers: { type: 'string', default: '200' },
    replicas: { type: 'string', default: '100000' },
    'per-workload': { type: 'string', default: '10' },
    ...extra,
  };
  if (process.argv.includes('--help')) {
    const lines = Object.entries(options).map(
      ([k, o]) => `  --${k} ${o.default === undefined ? '(not set)' : `(default ${o.default})`}`,
    );
    process.stdout.write(
      `options, each optional (the file's first comment says what the benchmark does):\n${lines.join('\n')}\n`,
    );
    process.exit(0);
  }
  const { values } = parseArgs({ options });
  const out: Record<string, number> = {};
  const text: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(values)) {
    if (textKeys.includes(k)) {
      text[k] = v as string | undefined;
      continue;
    }
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${k} must be a whole number, not '${v}'`);
    out[k] = n;
  }
  return { numbers: out, text };
}

export const POLICY_MIXES = 6;

export function benchPolicies(seed = 11): (i: number) => object {
  const rand = rng(seed);
  const cities = ['Madrid', 'Warsaw', 'Paris', 'Berlin', 'Milan', 'Stockholm', 'Vienna', 'Lisbon'];
  const countries = ['DE', 'FR', 'ES', 'IT', 'PL', 'NL', 'SE', 'AT'];
  const pick = <T>(a: readonly T[]) => a[Math.floor(rand() * a.length)]!;
  return (i) => {
    switch (i % POLICY_MIXES) {
      case 0:
        return { countries: [...new Set([pick(countries), pick(countries)])] };
      case 1:
        return { jurisdiction: 'EU', euControlled: true, weights: { carbon: 80, cost: 20 } };
      case 2:
        return { latency: [{ city: pick(cities), maxRttMs: 25 }], weights: { latency: 70, balance: 30 } };
      case 3:
        return {
          spread: { across: 'provider', minDomains: 3, mode: 'hard' },
          weights: { cost: 60, balance: 40 },
        };
      case 4:
        return { minSovereignty: 'eu-controlled', strategy: 'pack' };
      default:
        return {};
    }
  };
}

/** Resources of the i-th workload: 1–4 vCPUs, 1–3 GiB. */
export const benchResources = (i: number) => ({ vcpus: 1 + (i % 4), memoryMiB: 1024 * (1 + (i % 3)) });

/**
 * GETs `url` (http) over the agent's kept-alive connections and reads the whole body;
 * resolves with the status. A load client shares the machine with the control plane it
 * measures: node:http costs about a third of fetch's CPU a request (a 130 KB body: 150
 * against 500 µs here), CPU the control plane then has.
 */
export function httpGet(url: string, headers: Record<string, string>, agent: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    get(url, { agent, headers }, (res) => {
      res.on('data', () => {});
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    }).on('error', reject);
  });
}
