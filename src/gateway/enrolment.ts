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
import { EnrolRequestSchema, schemaErrors } from '../protocol/schemas.js';
import { render } from '../resources/index.js';
import {
  type EvictedInstance,
  INSTANCE_EVICTED,
  type JoinTokenRecord,
  newUid,
  type Store,
} from '../store/index.js';
import { inventoryExcess, nodeLimits } from './node-limits.js';

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
  /** The node this token re-enrols, if it was issued for that. */
  replaces?: string;
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
  ...(t.replaces ? { replaces: t.replaces } : {}),
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
    opts: { expiresInHours?: number; maxUses?: number; description?: string; replaces?: string },
  ): Promise<JoinTokenInfo & { token: string }> {
    await this.requireSiteAdmin(p, provider, site);
    if (opts.replaces !== undefined) {
      const node = await this.store.get('nodes', provider, opts.replaces);
      if (!node)
        throw new Problem('not_found', `Node '${provider}/${opts.replaces}' not found: nothing to replace`);
      if (node.spec.site !== site)
        throw new Problem(
          'conflict',
          `node '${provider}/${opts.replaces}' is at site '${node.spec.site}', not '${site}': create the token there`,
        );
      if ((opts.maxUses ?? 1) !== 1)
        throw Problem.invalid([
          { path: 'maxUses', message: 'a token that replaces a node has exactly one use' },
        ]);
    }
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
      ...(opts.replaces !== undefined ? { replaces: opts.replaces } : {}),
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

  /**
   * Trades a join token for a node credential and registers the node (state `enrolled`
   * until its agent connects and reports). A name already taken by a node is refused,
   * unless that node's credentials were revoked or the token was issued to replace it;
   * then the new node starts empty: the old node's instances are evicted (and placed
   * again by the workload controller), so it never receives another node's desired
   * state and the tenants' user data in it.
   */
  async enrol(body: unknown): Promise<EnrolResponse> {
    const errors = schemaErrors(EnrolRequestSchema, body);
    if (errors.length)
      throw new Problem(
        'invalid_request',
        `the enrolment request is invalid: ${errors.map((e) => `${e.path || '(body)'}: ${e.message}`).join('; ')}`,
        errors,
      );
    const req = body as EnrolRequest;
    const parsed = parseJoinToken(req.token);
    if (!parsed)
      throw new Problem(
        'unauthenticated',
        'the join token is malformed (expected ctj_<id>_<secret>_<ca sha256>)',
      );
    const name = req.name ?? nodeNameFrom(req.inventory.hostname);
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
      const site = await tx.get('sites', t.provider, t.site);
      const provider = await tx.get('providers', '', t.provider);
      if (!site || !provider)
        throw new Problem('not_found', `site '${t.provider}/${t.site}' of the join token no longer exists`);
      const excess = inventoryExcess(
        req.inventory,
        nodeLimits({ name: provider.name, ...provider.spec }, { name: site.name, ...site.spec }),
      );
      if (excess.length)
        throw new Problem(
          'invalid_request',
          `enrolment refused: ${excess.map((e) => `${e.path} ${e.message}`).join('; ')}`,
          excess,
        );
      if (t.replaces !== undefined && t.replaces !== name)
        throw new Problem(
          'conflict',
          `this join token was issued to replace node '${t.provider}/${t.replaces}', not to enrol '${name}'`,
        );
      const existing = await tx.get('nodes', t.provider, name);
      if (existing && existing.spec.site !== t.site)
        throw new Problem(
          'conflict',
          `node '${t.provider}/${name}' is enrolled at site '${existing.spec.site}', not '${t.site}'`,
        );
      if (existing && t.replaces !== name && (await tx.countNodeCredentials(t.provider, name)) > 0)
        throw new Problem(
          'conflict',
          `node '${t.provider}/${name}' is already enrolled: revoke it first (continuum node revoke ${t.provider}/${name}), ` +
            `or enrol under another name, or use a join token created with --replaces ${name}`,
        );
      const actor = `join-token:${t.id}`;
      const status = { state: 'enrolled', inventory: req.inventory };
      if (existing) {
        await tx.deleteNodeCredentials(t.provider, name);
        await this.evictInstances(tx, t.provider, name, actor);
        const res = await tx.update('nodes', existing.uid, undefined, {
          status,
          columns: { state: 'enrolled' },
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
          columns: { site: t.site, state: 'enrolled' },
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

  /**
   * Removes the instances bound to a node that is enrolled anew: they belonged to the
   * machine that had the name before. The workload controller hears each eviction (it
   * gives their capacity back and places the replicas again, on any node).
   */
  private async evictInstances(tx: Store, provider: string, node: string, actor: string): Promise<void> {
    for (const inst of await tx.listInstances({ provider, node })) {
      await tx.deleteInstance(inst.uid);
      await tx.appendEvent({
        actor,
        action: INSTANCE_EVICTED,
        kind: 'Instance',
        parent: inst.project,
        name: inst.name,
        provider,
        project: inst.project,
        before: {
          workload: inst.workload,
          provider,
          node,
          vcpus: inst.vcpus,
          memoryMiB: inst.memoryMiB,
          diskGiB: inst.diskGiB,
          accelerators: inst.spec.accelerators ?? 0,
        } satisfies EvictedInstance,
        after: null,
      });
    }
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
