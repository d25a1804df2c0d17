// Residency and sovereignty: allowed countries, provider jurisdiction, EU control,
// derived sovereignty level, required certifications, provider allow and deny lists.
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
