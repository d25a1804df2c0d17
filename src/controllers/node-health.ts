// Node health: a node whose agent goes silent becomes `suspect`, then `down`; a node
// that speaks again is `ready`. Health is all a node's status says: what its operator
// wants of it (cordon, drain) is in its spec (setNodeIntent), so no heartbeat, blip or
// reconnect can end a drain. Transitions are written with an event, which makes the
// workload controller re-place what ran on a down node.
//
// A work queue keyed by node: an agent's word (connected, a heartbeat from a node not
// ready) and each tick's finding that a node's silence calls for another state queue
// its key; sync(key) computes the state due from the last heartbeat and the clock and
// writes it when the store says otherwise. A write that fails (the store away for a
// moment) is retried with backoff, and one node's failure holds up no other. The clock
// is injectable, so tests drive time instead of sleeping.
import type { NodeSpec, NodeState } from '../model/index.js';
import { nodeKind } from '../model/index.js';
import { render } from '../resources/index.js';
import type { Store, StoredResource } from '../store/index.js';
import { type WorkItem, WorkQueue } from './work-queue.js';

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
  /** A state write failed (it is retried with backoff, at most `maxRetryDelayMs` apart). */
  onError?: (node: string, err: unknown) => void;
  /** Longest wait before a failed write is tried again (default 5 s). */
  maxRetryDelayMs?: number;
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
  intent: Pick<NodeSpec, 'unschedulable' | 'drain' | 'drainParallel'>,
): Promise<StoredResource | undefined> {
  return writeNode(store, provider, node, actor, action, (row) => {
    const spec = row.spec as NodeSpec;
    if (
      !!spec.unschedulable === !!intent.unschedulable &&
      !!spec.drain === !!intent.drain &&
      spec.drainParallel === intent.drainParallel
    )
      return undefined;
    // A bound on parallel moves lasts as long as the drain (undefined: no longer stored).
    return { spec: { ...intent, drainParallel: intent.drainParallel } };
  });
}

export class NodeHealthController {
  /** Nodes whose state may be due to change; a failed write is retried per node. */
  readonly queue: WorkQueue;
  /** When each node's agent was last heard from (heartbeat, report or connect). */
  private readonly lastSeen = new Map<string, number>();
  /** The state last written (or read) for each node: what the store says. */
  private readonly written = new Map<string, NodeState>();
  /** Nodes whose agent spoke since their state was last written: they are to be ready. */
  private readonly vouched = new Set<string>();
  private timer?: NodeJS.Timeout;
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
    this.queue = new WorkQueue(
      async ([item]: WorkItem[]) => [
        await this.sync(item!.key).then(
          () => undefined,
          (err: unknown) => err,
        ),
      ],
      (key, err) => opts.onError?.(key, err),
      { maxBackoffMs: opts.maxRetryDelayMs ?? 5000 },
    );
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
    this.queue.start();
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
      this.enqueueDue();
    }, interval);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.queue.stop();
  }

  /**
   * The agent of a node sent a heartbeat. Resolves once what it changed is written (or
   * has failed and waits for its retry); never rejects.
   */
  seen(provider: string, node: string): Promise<void> {
    const key = `${provider}/${node}`;
    this.lastSeen.set(key, this.clock.now());
    if (this.written.get(key) === 'ready' && !this.vouched.has(key)) return Promise.resolve();
    return this.connected(provider, node);
  }

  /**
   * An agent connected and reported: its node is ready, whatever this controller last
   * saw of it — a node enrolled anew under a known name starts `enrolled`.
   */
  connected(provider: string, node: string): Promise<void> {
    const key = `${provider}/${node}`;
    this.lastSeen.set(key, this.clock.now());
    this.vouched.add(key);
    this.queue.add(key);
    return this.queue.idle();
  }

  /** Queues the nodes whose silence calls for another state; resolves when they are written. */
  tick(): Promise<void> {
    this.enqueueDue();
    return this.queue.idle();
  }

  private enqueueDue(): void {
    const now = this.clock.now();
    for (const key of this.lastSeen.keys()) {
      const next = this.due(key, now);
      // Silence demotes; only an agent's own word (connected/seen) promotes.
      if (next && next !== 'ready' && next !== this.written.get(key)) this.queue.add(key);
    }
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

  /** Writes the state due for one node, if the store says otherwise; throws to be retried. */
  private async sync(key: string): Promise<void> {
    const [provider, node] = key.split('/') as [string, string];
    if (this.vouched.has(key)) {
      // Read what the store says: an enrolment may have written the node since.
      const row = await this.opts.store.get('nodes', provider, node);
      if (!row) {
        this.vouched.delete(key);
        return;
      }
      this.written.set(key, row.status.state);
    }
    const due = this.due(key, this.clock.now());
    const next = this.vouched.has(key) ? 'ready' : due !== 'ready' ? due : undefined;
    if (!next || next === this.written.get(key)) {
      this.vouched.delete(key);
      return;
    }
    await setNodeState(this.opts.store, provider, node, next, 'controller:node-health');
    this.written.set(key, next);
    this.vouched.delete(key);
  }
}
