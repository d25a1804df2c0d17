// Node health: a node whose agent goes silent becomes `suspect`, then `down`; a node
// that speaks again is `ready`. Transitions are written with an event, which makes the
// workload controller re-place what ran on a down node. `draining` is kept until the
// node is uncordoned.
import type { NodeState } from '../model/index.js';
import { nodeKind } from '../model/index.js';
import { render } from '../resources/index.js';
import type { Store } from '../store/index.js';

export interface NodeHealthOptions {
  store: Store;
  /** Silence after which a node is suspect. */
  suspectAfterMs?: number;
  /** Silence after which a node is down and its replicas may be re-placed. */
  downAfterMs?: number;
  checkIntervalMs?: number;
  /** After a control-plane start, how long agents get to reconnect before silence counts. */
  startupGraceMs?: number;
}

export const DEFAULT_SUSPECT_AFTER_MS = 10_000;
export const DEFAULT_DOWN_AFTER_MS = 15_000;

/** Writes a node's state with an audit event; no-op when it already has that state. */
export async function setNodeState(
  store: Store,
  provider: string,
  node: string,
  state: NodeState,
  actor: string,
  specPatch?: Record<string, unknown>,
): Promise<boolean> {
  return store.transaction(async (tx) => {
    const row = await tx.get('nodes', provider, node);
    if (!row) return false;
    const spec = specPatch ? { ...row.spec, ...specPatch } : row.spec;
    if (row.status.state === state && !specPatch) return false;
    const res = await tx.update('nodes', row.uid, undefined, {
      status: { ...row.status, state },
      ...(specPatch ? { spec } : {}),
      columns: { site: spec.site, state },
      bumpGeneration: !!specPatch,
    });
    if (!res.ok) return false;
    await tx.appendEvent({
      actor,
      action: state,
      kind: 'Node',
      parent: provider,
      name: node,
      provider,
      project: null,
      before: render(nodeKind, row),
      after: render(nodeKind, res.resource),
    });
    return true;
  });
}

export class NodeHealthController {
  private readonly lastSeen = new Map<string, number>();
  private readonly states = new Map<string, string>();
  private timer?: NodeJS.Timeout;
  private checking = false;
  private lastTick = 0;

  constructor(private readonly opts: NodeHealthOptions) {
    const suspect = opts.suspectAfterMs ?? DEFAULT_SUSPECT_AFTER_MS;
    const down = opts.downAfterMs ?? DEFAULT_DOWN_AFTER_MS;
    if (!(suspect > 0) || !(down > suspect))
      throw new Error(
        `node health: down-after (${down} ms) must be longer than suspect-after (${suspect} ms), both positive`,
      );
  }

  async start(): Promise<void> {
    const now = Date.now();
    for (const n of await this.opts.store.list('nodes')) {
      const key = `${n.parent}/${n.name}`;
      const hb = n.status.lastHeartbeat ? Date.parse(n.status.lastHeartbeat) : 0;
      // After a control-plane restart agents get time to reconnect (their backoff is at
      // most 10 s) before their silence counts.
      this.lastSeen.set(key, Math.max(hb, now + (this.opts.startupGraceMs ?? 10_000)));
      this.states.set(key, n.status.state);
    }
    const interval = this.opts.checkIntervalMs ?? 1000;
    this.lastTick = Date.now();
    this.timer = setInterval(() => {
      // A tick this late means this process itself stalled and heartbeats waited unread:
      // silence during the stall is not the nodes' fault, so their clocks move on by it.
      const now = Date.now();
      const stall = now - this.lastTick - interval;
      this.lastTick = now;
      if (stall > 1000) for (const [key, seen] of this.lastSeen) this.lastSeen.set(key, seen + stall);
      void this.check();
    }, interval);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** The agent of a node sent a heartbeat. */
  async seen(provider: string, node: string): Promise<void> {
    const state = this.states.get(`${provider}/${node}`);
    if (state === 'suspect' || state === 'down' || state === undefined) await this.connected(provider, node);
    else this.lastSeen.set(`${provider}/${node}`, Date.now());
  }

  /**
   * An agent connected and reported: its node is ready (unless draining), whatever this
   * controller last saw of it — a node enrolled anew under a known name starts `enrolled`.
   */
  async connected(provider: string, node: string): Promise<void> {
    const key = `${provider}/${node}`;
    this.lastSeen.set(key, Date.now());
    const row = await this.opts.store.get('nodes', provider, node);
    const current = row?.status.state;
    if (current === 'draining') return void this.states.set(key, 'draining');
    this.states.set(key, 'ready');
    if (current !== 'ready')
      await setNodeState(this.opts.store, provider, node, 'ready', 'controller:node-health');
  }

  /** Keeps the local view in step with states written elsewhere (drain, uncordon). */
  noted(provider: string, node: string, state: string): void {
    this.states.set(`${provider}/${node}`, state);
    if (!this.lastSeen.has(`${provider}/${node}`)) this.lastSeen.set(`${provider}/${node}`, Date.now());
  }

  private async check(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      const now = Date.now();
      const suspectAfter = this.opts.suspectAfterMs ?? DEFAULT_SUSPECT_AFTER_MS;
      const downAfter = this.opts.downAfterMs ?? DEFAULT_DOWN_AFTER_MS;
      for (const [key, seen] of this.lastSeen) {
        const state = this.states.get(key);
        const silent = now - seen;
        let next: NodeState | undefined;
        if (silent > downAfter && state !== 'down') next = 'down';
        else if (silent > suspectAfter && (state === 'ready' || state === 'draining')) next = 'suspect';
        if (!next) continue;
        const [provider, node] = key.split('/') as [string, string];
        this.states.set(key, next);
        await setNodeState(this.opts.store, provider, node, next, 'controller:node-health').catch(
          () => undefined,
        );
      }
    } finally {
      this.checking = false;
    }
  }
}
