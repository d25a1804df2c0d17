// The agents as the migration controller sees them when replicas share the fleet: an
// agent is connected to any one replica, the controller runs on the leader. Requests go
// through the gateway (which passes them to the replica holding the agent); the progress
// an agent reports to another replica arrives through that replica's presence notes
// (`heard`); image and relay grants are given here and on every other replica before the
// controller asks a node anything, and taken back everywhere when it is done.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { AgentLink } from '../controllers/migration-controller.js';
import type { AgentGateway } from '../gateway/index.js';
import type { AgentRequestMethod, AgentRequests, TransferProgress } from '../protocol/index.js';
import type { Grant, GrantMessage } from './forwarding.js';

/** How long another replica keeps a grant should the leader that gave it go away first. */
export const GRANT_TTL_MS = 2 * 3600_000;

type GrantBody = Grant extends infer G ? (G extends Grant ? Omit<G, 'id' | 'ttlMs'> : never) : never;

export class ClusterAgents extends EventEmitter implements AgentLink {
  constructor(
    private readonly gateway: AgentGateway,
    /** Sends a grant to the other replicas (PostgreSQL); absent, grants stay on this gateway. */
    private readonly share?: (msg: GrantMessage) => Promise<unknown>,
  ) {
    super();
    this.setMaxListeners(0);
    gateway.on('migration-progress', (...args: unknown[]) => this.emit('migration-progress', ...args));
  }

  request<M extends AgentRequestMethod>(
    provider: string,
    node: string,
    method: M,
    params: AgentRequests[M]['params'],
    timeoutMs?: number,
  ): Promise<AgentRequests[M]['result']> {
    return this.gateway.request(provider, node, method, params, timeoutMs);
  }

  /** Progress an agent reported to another replica. */
  heard(migration: string, progress: TransferProgress, provider: string, node: string): void {
    this.emit('migration-progress', migration, progress, provider, node);
  }

  allowImages(provider: string, node: string, sha256s: readonly string[]): Promise<() => void> {
    return this.shared(this.gateway.allowImages(provider, node, sha256s), {
      kind: 'images',
      provider,
      node,
      sha256s: [...sha256s],
    });
  }

  allowRelay(migration: string, source: string, target: string): Promise<() => void> {
    return this.shared(this.gateway.allowRelay(migration, source, target), {
      kind: 'relay',
      migration,
      source,
      target,
    });
  }

  private async shared(local: () => void, grant: GrantBody): Promise<() => void> {
    const share = this.share;
    if (!share) return local;
    const id = randomUUID();
    try {
      await share({ ...grant, id, ttlMs: GRANT_TTL_MS } as Grant);
    } catch (err) {
      local();
      throw err;
    }
    return () => {
      local();
      void share({ id, kind: 'end' }).catch(() => undefined);
    };
  }
}
