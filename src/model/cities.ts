// Named user locations for latency rules ("within 20 ms of Madrid"). The list is the
// project's reference data in data/eu-cities.csv.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface City {
  readonly name: string;
  readonly country: string;
  readonly latitude: number;
  readonly longitude: number;
}

function load(): Map<string, City> {
  // dist/src/model → repository root is three levels up; src/model (ts) two. Try both.
  const candidates = ['../../../data/eu-cities.csv', '../../data/eu-cities.csv'];
  for (const rel of candidates) {
    try {
      const text = readFileSync(fileURLToPath(new URL(rel, import.meta.url)), 'utf8');
      const cities = new Map<string, City>();
      for (const line of text.trim().split('\n').slice(1)) {
        const [name, country, lat, lon] = line.split(',');
        if (!name || !country || !lat || !lon) continue;
        cities.set(name.toLowerCase(), { name, country, latitude: Number(lat), longitude: Number(lon) });
      }
      return cities;
    } catch {}
  }
  throw new Error('data/eu-cities.csv not found next to the installation');
}

let cache: Map<string, City> | undefined;

export function findCity(name: string): City | undefined {
  cache ??= load();
  return cache.get(name.toLowerCase());
}

export function cityNames(): string[] {
  cache ??= load();
  return [...cache.values()].map((c) => c.name);
}
