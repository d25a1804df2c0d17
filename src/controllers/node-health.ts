// Node health: a node whose agent goes silent becomes `suspect`, then `down`; a node
// that speaks again is `ready`. Health is all a node's status says: what its operator
// wants of it (cordon, drain) is in its spec (setNodeIntent), so no heartbeat, blip or
// reconnect can end a drain. Transitions are written with an event, which makes the
// workload controller re-place what ran on a down node.
//
// The controller works like a queue keyed by node: each tick computes the state every
// node should have from its last heartbeat and the clock, and writes the nodes whose
// stored state differs. A write that fails (the store away for a moment) is not lost:
// the node is still out of step at the next tick and is written then. The clock is
// injectable, so tests drive time instead of sleeping.
import type { NodeSpec, NodeState } from '../model/index.js';
import { nodeKind } from '../model/index.js';
import { render } from '../resources/index.js';
import type { Store, StoredResource } from '../store/index.js';

export interface Clock {
  now(): number;
}

export interface NodeHealthOptions {
  store: Store;
  /** Silence after which a node is suspect. */
  suspectAfterMs?: number;
  /** Silence after which a node is down and its replicas may be re-placed. */
  downAfterMs?: number;
  checkIntervalMs?: number;
  /** After a control-plane start, how long agents get to reconnect before silence counts. */
  startupGraceMs?: number;
  clock?: Clock;
  /** A state write failed (it is retried at the next tick). */
  onError?: (node: string, err: unknown) => void;
}

export const DEFAULT_SUSPECT_AFTER_MS = 10_000;
export const DEFAULT_DOWN_AFTER_MS = 15_000;

async function writeNode(
  store: Store,
  provider: string,
  node: string,
  actor: string,
  action: string,
  change: (row: StoredResource) => { state?: NodeState; spec?: Partial<NodeSpec> } | undefined,
): Promise<StoredResource | undefined> {
  return store.transaction(async (tx) => {
    const row = await tx.get('nodes', provider, node);
    if (!row) return undefined;
    const c = change(row);
    if (!c) return row;
    const spec = c.spec ? { ...row.spec, ...c.spec } : row.spec;
    const state = c.state ?? row.status.state;
    const res = await tx.update('nodes', row.uid, undefined, {
      status: { ...row.status, state },
      ...(c.spec ? { spec } : {}),
      columns: { site: spec.site, state },
      bumpGeneration: !!c.spec,
    });
    if (!res.ok) throw new Error(`node '${provider}/${node}' changed while being written; retry`);
    await tx.appendEvent({
      actor,
      action,
      kind: 'Node',
      parent: provider,
      name: node,
      provider,
      project: null,
      before: render(nodeKind, row),
      after: render(nodeKind, res.resource),
    });
    return res.resource;
  });
}

/** Writes a node's health with an audit event; false when it already had that state or is gone. */
export async function setNodeState(
  store: Store,
  provider: string,
  node: string,
  state: NodeState,
  actor: string,
): Promise<boolean> {
  let changed = false;
  await writeNode(store, provider, node, actor, state, (row) => {
    if (row.status.state === state) return undefined;
    changed = true;
    return { state };
  });
  return changed;
}

/** Records what an operator wants of a node (cordon, drain) in its spec; its health is left alone. */
export async function setNodeIntent(
  store: Store,
  provider: string,
  node: string,
  action: string,
  actor: string,
  intent: Pick<NodeSpec, 'unschedulable' | 'drain'>,
): Promise<StoredResource | undefined> {
  return writeNode(store, provider, node, actor, action, (row) => {
    const spec = row.spec as NodeSpec;
    if (!!spec.unschedulable === !!intent.unschedulable && !!spec.drain === !!intent.drain) return undefined;
    return { spec: intent };
  });
}

export class NodeHealthController {
  /** When each node's agent was last heard from (heartbeat, report or connect). */
  private readonly lastSeen = new Map<string, number>();
  /** The state last written (or read) for each node: what the store says. */
  private readonly written = new Map<string, NodeState>();
  private timer?: NodeJS.Timeout;
  private checking = false;
  private lastTick = 0;
  private readonly clock: Clock;

  constructor(private readonly opts: NodeHealthOptions) {
    const suspect = opts.suspectAfterMs ?? DEFAULT_SUSPECT_AFTER_MS;
    const down = opts.downAfterMs ?? DEFAULT_DOWN_AFTER_MS;
    if (!(suspect > 0) || !(down > suspect))
      throw new Error(
        `node health: down-after (${down} ms) must be longer than suspect-after (${suspect} ms), both positive`,
      );
    this.clock = opts.clock ?? { now: () => Date.now() };
  }

  /** Loads every node; with `timer: false` the caller drives `tick()` (tests). */
  async start(opts: { timer?: boolean } = {}): Promise<void> {
    const now = this.clock.now();
    for (const n of await this.opts.store.list('nodes')) {
      const key = `${n.parent}/${n.name}`;
      const hb = n.status.lastHeartbeat ? Date.parse(n.status.lastHeartbeat) : 0;
      // After a control-plane restart agents get time to reconnect (their backoff is at
      // most 10 s) before their silence counts.
      this.lastSeen.set(key, Math.max(hb, now + (this.opts.startupGraceMs ?? 10_000)));
      this.written.set(key, n.status.state);
    }
    const interval = this.opts.checkIntervalMs ?? 1000;
    this.lastTick = now;
    if (opts.timer === false) return;
    this.timer = setInterval(() => {
      // A tick this late means this process itself stalled and heartbeats waited unread:
      // silence during the stall is not the nodes' fault, so their clocks move on by it.
      const at = this.clock.now();
      const stall = at - this.lastTick - interval;
      this.lastTick = at;
      if (stall > 1000) for (const [key, seen] of this.lastSeen) this.lastSeen.set(key, seen + stall);
      void this.tick();
    }, interval);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** The agent of a node sent a heartbeat. */
  async seen(provider: string, node: string): Promise<void> {
    const key = `${provider}/${node}`;
    this.lastSeen.set(key, this.clock.now());
    if (this.written.get(key) !== 'ready') await this.connected(provider, node);
  }

  /**
   * An agent connected and reported: its node is ready, whatever this controller last
   * saw of it — a node enrolled anew under a known name starts `enrolled`.
   */
  async connected(provider: string, node: string): Promise<void> {
    const key = `${provider}/${node}`;
    this.lastSeen.set(key, this.clock.now());
    // Read what the store says: an enrolment may have written the node since.
    const row = await this.opts.store.get('nodes', provider, node);
    if (!row) return;
    this.written.set(key, row.status.state);
    await this.write(key, 'ready');
  }

  /** The state a node should have now, from its silence. */
  private due(key: string, now: number): NodeState | undefined {
    const seen = this.lastSeen.get(key);
    const state = this.written.get(key);
    if (seen === undefined || state === undefined || state === 'enrolled') return undefined;
    const silent = now - seen;
    if (silent > (this.opts.downAfterMs ?? DEFAULT_DOWN_AFTER_MS)) return 'down';
    if (silent > (this.opts.suspectAfterMs ?? DEFAULT_SUSPECT_AFTER_MS))
      return state === 'down' ? 'down' : 'suspect';
    return 'ready';
  }

  /**
   * Writes every node whose stored state is not the one due. Failed writes stay due and
   * are tried again at the next tick; one node's failure does not hold up the others.
   */
  async tick(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      const now = this.clock.now();
      for (const key of this.lastSeen.keys()) {
        const next = this.due(key, now);
        // Silence demotes; only an agent's own word (connected/seen) promotes.
        if (!next || next === 'ready' || next === this.written.get(key)) continue;
        await this.write(key, next).catch(() => undefined);
      }
    } finally {
      this.checking = false;
    }
  }

  private async write(key: string, state: NodeState): Promise<void> {
    if (this.written.get(key) === state) return;
    const [provider, node] = key.split('/') as [string, string];
    try {
      await setNodeState(this.opts.store, provider, node, state, 'controller:node-health');
      this.written.set(key, state);
    } catch (err) {
      this.opts.onError?.(key, err);
      throw err;
    }
  }
}
