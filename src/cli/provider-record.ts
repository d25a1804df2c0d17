// `continuum describe provider`: the provider's sovereignty record in words — who
// controls it, who else reaches its customers' data, what it is certified for until
// when (valid or expired today), and its score with what each objective adds.
import { table } from './output.js';

const today = () => new Date().toISOString().slice(0, 10);

function until(expires: string): string {
  return `until ${expires} (${expires >= today() ? 'valid' : 'EXPIRED'})`;
}

export function sovereigntySection(provider: any): string[] {
  const r = provider.spec.sovereignty;
  const s = provider.status ?? {};
  if (!r)
    return [
      'Sovereignty: no record (spec.sovereignty); level derived from jurisdiction, EU control and certifications',
    ];
  const lines = [
    'Sovereignty:',
    `  Score:           ${s.sovereigntyScore ?? '?'} / 100 (level ${s.sovereigntyLevel})`,
    `  Legal seat:      ${r.legalSeat}${r.ultimateParent ? `; ultimate parent ${r.ultimateParent.name} (${r.ultimateParent.country})` : ''}`,
    `  Control:         ${r.nonEuControl ? 'an entity outside the EU controls it' : 'no entity outside the EU controls it'}`,
    `  Certifications:  ${(r.certifications ?? []).map((c: any) => `${c.name} ${until(c.expires)}`).join(', ') || '-'}`,
    `  Gaia-X:          ${r.gaiaX ? `level ${r.gaiaX.level} ${until(r.gaiaX.expires)}` : '-'}`,
    `  Subcontractors:  ${
      (r.subcontractors ?? [])
        .map((c: any) => `${c.name} (${c.country}): ${c.access.join(', ')}`)
        .join('; ') || '-'
    }`,
  ];
  if (s.contributions) {
    const rows = s.contributions.map((c: any) => [
      c.name,
      `${c.weight} %`,
      `${c.seal}/4`,
      c.points.toFixed(2),
      r.objectives?.[c.objective]?.evidence ?? '-',
    ]);
    lines.push(
      ...table(['OBJECTIVE', 'WEIGHT', 'SEAL', 'POINTS', 'EVIDENCE'], rows)
        .trimEnd()
        .split('\n')
        .map((l) => `  ${l}`),
    );
  }
  return lines;
}
