// Users' credentials: token issue, lookup and revocation, and the first federation
// admin created on a fresh store.
import {
  canRead,
  canWrite,
  generateToken,
  isFederationAdmin,
  type Principal,
  parseToken,
  secretMatches,
} from '../auth/index.js';
import { Problem, type RoleBinding, userKind } from '../model/index.js';
import { newUid, type Store, type TokenRecord } from '../store/index.js';
import { render } from './render.js';

export interface TokenInfo {
  id: string;
  user: string;
  description: string;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
}

function info(t: TokenRecord): TokenInfo {
  return {
    id: t.id,
    user: t.userName,
    description: t.description,
    createdAt: t.createdAt,
    expiresAt: t.expiresAt,
    lastUsedAt: t.lastUsedAt,
  };
}

/** Last-used times are written at most this often per token, to keep reads cheap. */
const TOUCH_INTERVAL_MS = 60_000;

export const BOOTSTRAP_ADMIN = 'admin';

export class IdentityService {
  constructor(private readonly store: Store) {}

  /** Resolves a bearer token to a principal; undefined when unknown, revoked or expired. */
  async authenticate(token: string): Promise<Principal | undefined> {
    const parsed = parseToken(token);
    if (!parsed) return undefined;
    const found = await this.store.getTokenWithUser(parsed.id);
    if (!found || !secretMatches(parsed.secret, found.token.secretHash)) return undefined;
    const { token: record, userSpec } = found;
    const now = new Date();
    if (record.expiresAt && new Date(record.expiresAt) <= now) return undefined;
    if (!userSpec) return undefined;
    if (!record.lastUsedAt || now.getTime() - new Date(record.lastUsedAt).getTime() > TOUCH_INTERVAL_MS)
      await this.store.touchToken(record.id, now.toISOString());
    return { user: record.userName, bindings: userSpec.roles as RoleBinding[], tokenId: record.id };
  }

  private async requireUserAccess(p: Principal, userName: string): Promise<RoleBinding[]> {
    const user = await this.store.get('users', '', userName);
    if (!user || !canRead(p, userKind, '', userName, user.spec))
      throw new Problem('not_found', `user '${userName}' not found`);
    const roles = user.spec.roles as RoleBinding[];
    if (p.user !== userName && !canWrite(p, userKind, 'update', '', userName, { before: roles }))
      throw new Problem('forbidden', `user '${p.user}' may not manage the tokens of user '${userName}'`);
    return roles;
  }

  async createToken(
    p: Principal,
    userName: string,
    opts: { description?: string; expiresInDays?: number },
  ): Promise<TokenInfo & { token: string }> {
    await this.requireUserAccess(p, userName);
    const t = generateToken();
    const now = new Date();
    const record = {
      id: t.id,
      userName,
      secretHash: t.secretHash,
      description: opts.description ?? '',
      createdAt: now.toISOString(),
      expiresAt: opts.expiresInDays
        ? new Date(now.getTime() + opts.expiresInDays * 86_400_000).toISOString()
        : null,
    };
    await this.store.transaction(async (tx) => {
      await tx.insertToken(record);
      await tx.appendEvent({
        actor: p.user,
        action: 'create',
        kind: 'Token',
        parent: userName,
        name: t.id,
        provider: null,
        project: null,
        before: null,
        after: { id: t.id, user: userName, description: record.description, expiresAt: record.expiresAt },
      });
    });
    return { ...info({ ...record, lastUsedAt: null }), token: t.token };
  }

  async listTokens(p: Principal, userName: string): Promise<TokenInfo[]> {
    await this.requireUserAccess(p, userName);
    return (await this.store.listTokens(userName)).map(info);
  }

  async revokeToken(p: Principal, id: string): Promise<TokenInfo> {
    const record = await this.store.getToken(id);
    if (!record) throw new Problem('not_found', `token '${id}' not found`);
    try {
      await this.requireUserAccess(p, record.userName);
    } catch (err) {
      // Do not reveal that a token of an invisible user exists.
      if (err instanceof Problem) throw new Problem('not_found', `token '${id}' not found`);
      throw err;
    }
    await this.store.transaction(async (tx) => {
      await tx.deleteToken(id);
      await tx.appendEvent({
        actor: p.user,
        action: 'delete',
        kind: 'Token',
        parent: record.userName,
        name: id,
        provider: null,
        project: null,
        before: { id, user: record.userName, description: record.description },
        after: null,
      });
    });
    return info(record);
  }

  /**
   * On a store without users, creates the federation admin and a token for it.
   * Returns the token (to be shown once), or undefined when users already exist.
   */
  async bootstrap(): Promise<string | undefined> {
    return this.store.transaction(async (tx) => {
      if ((await tx.count('users')) > 0) return undefined;
      const spec = { displayName: 'Federation administrator', roles: [{ role: 'federation-admin' }] };
      const row = await tx.insert('users', {
        uid: newUid(),
        parent: '',
        name: BOOTSTRAP_ADMIN,
        labels: {},
        spec,
        status: {},
        createdBy: 'system',
        columns: {},
      });
      const t = generateToken();
      await tx.insertToken({
        id: t.id,
        userName: BOOTSTRAP_ADMIN,
        secretHash: t.secretHash,
        description: 'created at first start',
        createdAt: new Date().toISOString(),
        expiresAt: null,
      });
      await tx.appendEvent({
        actor: 'system',
        action: 'create',
        kind: 'User',
        parent: '',
        name: BOOTSTRAP_ADMIN,
        provider: null,
        project: null,
        before: null,
        after: render(userKind, row),
      });
      return t.token;
    });
  }

  whoami(p: Principal) {
    return { user: p.user, roles: p.bindings, tokenId: p.tokenId, federationAdmin: isFederationAdmin(p) };
  }
}
