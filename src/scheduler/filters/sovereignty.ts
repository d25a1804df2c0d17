// Residency and sovereignty: allowed countries, provider jurisdiction, EU control,
// derived sovereignty level, required certifications, provider allow and deny lists.
import { EU_MEMBERS } from '../../model/countries.js';
import { SOVEREIGNTY_LEVELS } from '../../model/index.js';
import { REASONS } from '../reasons.js';
import type { Filter } from '../types.js';

export const countries: Filter = {
  name: 'countries',
  check: (n, r) => {
    const allowed = r.policy.countries;
    return allowed && !allowed.includes(n.siteInfo.country) ? REASONS.country : undefined;
  },
};

/** Only the sites named `provider/site` (Kubernetes' zone selector maps here). */
export const sites: Filter = {
  name: 'sites',
  check: (n, r) => {
    const allowed = r.policy.sites;
    return allowed && !allowed.includes(`${n.provider}/${n.site}`) ? REASONS.site : undefined;
  },
};

export const jurisdiction: Filter = {
  name: 'jurisdiction',
  check: (n, r) =>
    r.policy.jurisdiction && n.providerInfo.jurisdiction !== r.policy.jurisdiction
      ? REASONS.jurisdiction
      : undefined,
};

export const euControl: Filter = {
  name: 'euControl',
  check: (n, r) => (r.policy.euControlled && !n.providerInfo.euControlled ? REASONS.euControl : undefined),
};

export const sovereignty: Filter = {
  name: 'sovereignty',
  check: (n, r) => {
    const min = r.policy.minSovereignty;
    if (!min) return undefined;
    return SOVEREIGNTY_LEVELS.indexOf(n.providerInfo.sovereigntyLevel) < SOVEREIGNTY_LEVELS.indexOf(min)
      ? REASONS.sovereignty
      : undefined;
  },
};

export const certifications: Filter = {
  name: 'certifications',
  check: (n, r) =>
    (r.policy.certifications ?? []).every((c) => n.providerInfo.certifications.includes(c))
      ? undefined
      : REASONS.certification,
};

export const sovereigntyScore: Filter = {
  name: 'sovereigntyScore',
  check: (n, r) => {
    const min = r.policy.minSovereigntyScore;
    return min !== undefined && (n.providerInfo.record?.score ?? 0) < min
      ? REASONS.sovereigntyScore
      : undefined;
  },
};

export const seal: Filter = {
  name: 'seal',
  check: (n, r) => {
    const min = r.policy.minSeal;
    if (!min) return undefined;
    const levels = n.providerInfo.record?.seal ?? {};
    for (const [objective, level] of Object.entries(min))
      if ((levels[objective] ?? 0) < (level ?? 0)) return REASONS.seal;
    return undefined;
  },
};

export const subcontractors: Filter = {
  name: 'subcontractors',
  check: (n, r) => {
    const allowed = r.policy.subcontractorCountries;
    if (!allowed) return undefined;
    // A provider that has not said who its subcontractors are is not known to qualify.
    const record = n.providerInfo.record;
    if (!record) return REASONS.subcontractors;
    const ok = (c: string) => allowed.includes(c) || (allowed.includes('EU') && EU_MEMBERS.has(c));
    return record.subcontractorCountries.every(ok) ? undefined : REASONS.subcontractors;
  },
};

export const gaiaX: Filter = {
  name: 'gaiaX',
  check: (n, r) => {
    const min = r.policy.minGaiaX;
    return min !== undefined && (n.providerInfo.record?.gaiaX ?? 0) < min ? REASONS.gaiaX : undefined;
  },
};

export const providers: Filter = {
  name: 'providers',
  check: (n, r) => {
    const p = r.policy.providers;
    if (!p) return undefined;
    if (p.deny?.includes(n.provider)) return REASONS.providerDenied;
    if (p.allow && !p.allow.includes(n.provider)) return REASONS.providerDenied;
    return undefined;
  },
};
