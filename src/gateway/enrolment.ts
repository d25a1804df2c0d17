// Join tokens and node credentials. A provider-admin issues a join token for a site
// (expiry, maximum uses); an agent trades it for its node's own long-lived credential.
// Both secrets are stored only as SHA-256 hashes.
import { randomBytes } from 'node:crypto';
import { canReadParent, canWrite, hashSecret, type Principal, secretMatches } from '../auth/index.js';
import { NAME_PATTERN, nodeKind, Problem } from '../model/index.js';
import {
  type EnrolRequest,
  type EnrolResponse,
  parseJoinToken,
  parseNodeCredential,
} from '../protocol/index.js';
import { render } from '../resources/index.js';
import { type JoinTokenRecord, newUid, type Store } from '../store/index.js';

export interface JoinTokenInfo {
  id: string;
  provider: string;
  site: string;
  description: string;
  createdBy: string;
  createdAt: string;
  expiresAt: string;
  maxUses: number;
  uses: number;
}

const info = (t: JoinTokenRecord): JoinTokenInfo => ({
  id: t.id,
  provider: t.provider,
  site: t.site,
  description: t.description,
  createdBy: t.createdBy,
  createdAt: t.createdAt,
  expiresAt: t.expiresAt,
  maxUses: t.maxUses,
  uses: t.uses,
});

function secret(): { id: string; secret: string } {
  return { id: randomBytes(8).toString('hex'), secret: randomBytes(32).toString('base64url') };
}

/** A node name from a hostname: lower-case, dashes for anything else, at most 63 characters. */
export function nodeNameFrom(hostname: string): string {
  const n = hostname
    .toLowerCase()
    .split('.')[0]!
    .replace(/[^a-z0-9-]/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return n || 'node';
}

export class Enrolment {
  constructor(
    private readonly store: Store,
    private readonly caFingerprint: () => string,
  ) {}

  private async requireSiteAdmin(p: Principal, provider: string, site: string): Promise<void> {
    if (!canReadParent(p, nodeKind, provider) || !canWrite(p, nodeKind, 'create', provider, site))
      throw new Problem('forbidden', `user '${p.user}' may not enrol nodes for provider '${provider}'`);
    if (!(await this.store.get('sites', provider, site)))
      throw new Problem('not_found', `Site '${provider}/${site}' not found`);
  }

  async createJoinToken(
    p: Principal,
    provider: string,
    site: string,
    opts: { expiresInHours?: number; maxUses?: number; description?: string },
  ): Promise<JoinTokenInfo & { token: string }> {
    await this.requireSiteAdmin(p, provider, site);
    const s = secret();
    const now = new Date();
    const record: JoinTokenRecord = {
      id: s.id,
      provider,
      site,
      secretHash: hashSecret(s.secret),
      description: opts.description ?? '',
      createdBy: p.user,
      createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + (opts.expiresInHours ?? 24) * 3_600_000).toISOString(),
      maxUses: opts.maxUses ?? 1,
      uses: 0,
    };
    await this.store.transaction(async (tx) => {
      await tx.insertJoinToken(record);
      await tx.appendEvent({
        actor: p.user,
        action: 'create',
        kind: 'JoinToken',
        parent: `${provider}/${site}`,
        name: s.id,
        provider,
        project: null,
        before: null,
        after: info(record),
      });
    });
    return { ...info(record), token: `ctj_${s.id}_${s.secret}_${this.caFingerprint()}` };
  }

  async listJoinTokens(p: Principal, provider: string, site: string): Promise<JoinTokenInfo[]> {
    await this.requireSiteAdmin(p, provider, site);
    return (await this.store.listJoinTokens(provider, site)).map(info);
  }

  async revokeJoinToken(p: Principal, provider: string, site: string, id: string): Promise<JoinTokenInfo> {
    await this.requireSiteAdmin(p, provider, site);
    const t = await this.store.getJoinToken(id);
    if (!t || t.provider !== provider || t.site !== site)
      throw new Problem('not_found', `join token '${id}' not found`);
    await this.store.transaction(async (tx) => {
      await tx.deleteJoinToken(id);
      await tx.appendEvent({
        actor: p.user,
        action: 'delete',
        kind: 'JoinToken',
        parent: `${provider}/${site}`,
        name: id,
        provider,
        project: null,
        before: info(t),
        after: null,
      });
    });
    return info(t);
  }

  /** Trades a join token for a node credential; registers (or re-registers) the node. */
  async enrol(req: EnrolRequest): Promise<EnrolResponse> {
    const parsed = parseJoinToken(req.token ?? '');
    if (!parsed)
      throw new Problem(
        'unauthenticated',
        'the join token is malformed (expected ctj_<id>_<secret>_<ca sha256>)',
      );
    const name = req.name ?? nodeNameFrom(req.inventory?.hostname ?? '');
    if (!new RegExp(NAME_PATTERN).test(name))
      throw Problem.invalid([{ path: 'name', message: `'${name}' is not a valid node name` }]);
    return this.store.transaction(async (tx) => {
      const t = await tx.getJoinToken(parsed.id);
      if (!t || !secretMatches(parsed.secret, t.secretHash))
        throw new Problem('unauthenticated', 'the join token is not valid (unknown, revoked or forged)');
      if (new Date(t.expiresAt) <= new Date())
        throw new Problem(
          'unauthenticated',
          `the join token expired at ${t.expiresAt}; ask the provider for a new one`,
        );
      if (!(await tx.useJoinToken(t.id)))
        throw new Problem(
          'unauthenticated',
          `the join token has been used up (${t.maxUses} of ${t.maxUses} uses)`,
        );
      if (!(await tx.get('sites', t.provider, t.site)))
        throw new Problem('not_found', `site '${t.provider}/${t.site}' of the join token no longer exists`);
      const existing = await tx.get('nodes', t.provider, name);
      if (existing && existing.spec.site !== t.site)
        throw new Problem(
          'conflict',
          `node '${t.provider}/${name}' is enrolled at site '${existing.spec.site}', not '${t.site}'`,
        );
      const actor = `join-token:${t.id}`;
      const status = {
        state: 'ready',
        inventory: req.inventory,
        lastHeartbeat: new Date().toISOString(),
      };
      if (existing) {
        await tx.deleteNodeCredentials(t.provider, name);
        const res = await tx.update('nodes', existing.uid, undefined, {
          status,
          columns: { state: 'ready' },
          bumpGeneration: false,
        });
        if (res.ok)
          await tx.appendEvent({
            actor,
            action: 'enrol',
            kind: 'Node',
            parent: t.provider,
            name,
            provider: t.provider,
            project: null,
            before: render(nodeKind, existing),
            after: render(nodeKind, res.resource),
          });
      } else {
        const row = await tx.insert('nodes', {
          uid: newUid(),
          parent: t.provider,
          name,
          labels: {},
          spec: { site: t.site },
          status,
          createdBy: actor,
          columns: { site: t.site, state: 'ready' },
        });
        await tx.appendEvent({
          actor,
          action: 'create',
          kind: 'Node',
          parent: t.provider,
          name,
          provider: t.provider,
          project: null,
          before: null,
          after: render(nodeKind, row),
        });
      }
      const s = secret();
      await tx.insertNodeCredential({
        id: s.id,
        provider: t.provider,
        node: name,
        secretHash: hashSecret(s.secret),
        createdAt: new Date().toISOString(),
      });
      return { provider: t.provider, site: t.site, node: name, credential: `ctn_${s.id}_${s.secret}` };
    });
  }

  async authenticateNode(
    credential: string,
  ): Promise<{ provider: string; node: string; credentialId: string } | undefined> {
    const parsed = parseNodeCredential(credential);
    if (!parsed) return undefined;
    const c = await this.store.getNodeCredential(parsed.id);
    if (!c || !secretMatches(parsed.secret, c.secretHash)) return undefined;
    return { provider: c.provider, node: c.node, credentialId: c.id };
  }

  /** Revokes every credential of a node; its agent is disconnected by the caller. */
  async revokeNode(p: Principal, provider: string, node: string): Promise<number> {
    if (!canReadParent(p, nodeKind, provider) || !canWrite(p, nodeKind, 'update', provider, node))
      throw new Problem('forbidden', `user '${p.user}' may not revoke nodes of provider '${provider}'`);
    if (!(await this.store.get('nodes', provider, node)))
      throw new Problem('not_found', `Node '${provider}/${node}' not found`);
    return this.store.transaction(async (tx) => {
      const n = await tx.deleteNodeCredentials(provider, node);
      await tx.appendEvent({
        actor: p.user,
        action: 'revoke',
        kind: 'Node',
        parent: provider,
        name: node,
        provider,
        project: null,
        before: null,
        after: { credentialsRevoked: n },
      });
      return n;
    });
  }
}
