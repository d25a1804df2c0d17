// Kubernetes resource quantities ("500m", "2", "64Mi", "1G", "1e9") and their
// conversion to Continuum's whole vCPUs and MiB.

const SUFFIXES: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

const QUANTITY = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?)$/;

/** The value of a quantity, or undefined when it is not one. */
export function parseQuantity(q: string | number): number | undefined {
  if (typeof q === 'number') return Number.isFinite(q) ? q : undefined;
  const m = QUANTITY.exec(q.trim());
  if (!m) return undefined;
  const base = Number(m[1]);
  if (m[2]) return base * 10 ** Number(m[2].slice(1));
  return base * SUFFIXES[m[3] ?? '']!;
}

/** Whole vCPUs for a CPU quantity: rounded up, at least one. */
export function vcpusOf(q: string | number): number | undefined {
  const v = parseQuantity(q);
  return v === undefined || v < 0 ? undefined : Math.max(1, Math.ceil(v - 1e-9));
}

/** MiB for a memory quantity: rounded up. */
export function mebibytesOf(q: string | number): number | undefined {
  const v = parseQuantity(q);
  return v === undefined || v < 0 ? undefined : Math.ceil(v / 2 ** 20 - 1e-9);
}
