// A synthetic federation with realistic attributes: providers with headquarters,
// jurisdictions and certifications; sites in the reference cities with their country's
// grid carbon intensity, tiers and prices; nodes of varied sizes, some with GPUs.
// Deterministic for a given seed.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cityNames, findCity } from '../model/index.js';
import type { Inventory } from '../protocol/index.js';

export interface SimSite {
  provider: string;
  name: string;
  nodes: { name: string; inventory: Partial<Inventory> }[];
  manifest: object;
}

export interface SimFederation {
  providers: object[];
  sites: SimSite[];
}

/** A small deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function carbonByCountry(): Map<string, number> {
  const text = readFileSync(
    fileURLToPath(new URL('../../../data/grid-carbon-intensity.csv', import.meta.url)),
    'utf8',
  );
  return new Map(
    text
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split(','))
      .map(([c, v]) => [c!, Number(v)]),
  );
}

const CERTS = ['ISO27001', 'C5', 'EUCS-substantial', 'EUCS-high', 'SecNumCloud', 'ENS-high', 'TISAX'];
const TIERS = ['core', 'regional', 'edge', 'edge', 'far-edge'] as const;

export function generateFederation(opts: { providers: number; nodes: number; seed?: number }): SimFederation {
  const rand = rng(opts.seed ?? 42);
  const pick = <T>(a: readonly T[]) => a[Math.floor(rand() * a.length)]!;
  const carbon = carbonByCountry();
  const cities = cityNames().map((n) => findCity(n)!);
  const providers: object[] = [];
  const sites: SimSite[] = [];
  for (let p = 0; p < opts.providers; p++) {
    const home = pick(cities);
    const name = `prov-${String(p).padStart(3, '0')}`;
    const nonEu = rand() < 0.1;
    const certs = CERTS.filter(() => rand() < 0.25);
    providers.push({
      kind: 'Provider',
      metadata: { name },
      spec: {
        displayName: `Provider ${p} (${home.name})`,
        headquarters: nonEu ? 'US' : home.country,
        jurisdiction: nonEu ? 'non-EU' : 'EU',
        euControlled: !nonEu && rand() < 0.85,
        certifications: certs,
      },
    });
    const siteCount = 1 + Math.floor(rand() * 3);
    for (let s = 0; s < siteCount; s++) {
      const city = s === 0 ? home : pick(cities);
      const tier = pick(TIERS);
      const siteName = `${city.name.toLowerCase().replace(/[^a-z]/g, '')}-${s + 1}`;
      sites.push({
        provider: name,
        name: siteName,
        nodes: [],
        manifest: {
          kind: 'Site',
          metadata: { name: siteName, provider: name },
          spec: {
            country: city.country,
            region: city.name,
            location: { latitude: city.latitude, longitude: city.longitude },
            tier,
            carbonIntensity: carbon.get(city.country) ?? 300,
            prices: {
              vcpuHour: Math.round((0.01 + rand() * 0.04) * 1000) / 1000,
              memoryGbHour: Math.round((0.002 + rand() * 0.004) * 10000) / 10000,
            },
          },
        },
      });
    }
  }
  for (let n = 0; n < opts.nodes; n++) {
    const site = sites[n % sites.length]!;
    const cpus = pick([16, 32, 48, 64, 96, 128]);
    const gpu = rand() < 0.05;
    site.nodes.push({
      name: `${site.name}-n${site.nodes.length + 1}`,
      inventory: {
        cpus,
        memoryMiB: cpus * 4096,
        diskGiB: 2000,
        virtualization: rand() < 0.9 ? 'kvm' : 'emulation',
        cpuSecurity: rand() < 0.2 ? ['sev-snp'] : [],
        accelerators: gpu
          ? [
              {
                vendor: 'NVIDIA',
                model: pick(['H100 80GB', 'L40S', 'A100 40GB']),
                memoryMiB: 81920,
                count: pick([1, 2, 4, 8]),
              },
            ]
          : [],
      },
    });
  }
  return { providers, sites: sites.filter((s) => s.nodes.length > 0) };
}
