// A deduplicating work queue for level-triggered controllers: handlers only enqueue a
// key; the worker hands keys to sync, which re-reads current state. Failures are retried
// per key with exponential backoff. Two lanes: changes that need a decision (a new or
// changed workload, a failed node) go before mere status bookkeeping (an agent's report),
// which still runs once it has waited `lowLaneMaxWaitMs`, so that neither starves. When
// keys pile up, sync gets up to `maxBatch` of them at once (one transaction for all, in
// the workload controller), and more while a backlog waits (`maxBacklogBatch`).

/** A FIFO of keys; popping is O(1). */
class Lane {
  private items: string[] = [];
  private head = 0;
  push(key: string): void {
    this.items.push(key);
  }
  peek(): string | undefined {
    return this.items[this.head];
  }
  shift(): string | undefined {
    const key = this.items[this.head];
    if (key === undefined) return undefined;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return key;
  }
  get length(): number {
    return this.items.length - this.head;
  }
}

export interface WorkItem {
  key: string;
  /** When it was first queued (ms, performance.now()). */
  queuedAt: number;
  /** It waited in the low lane only: status bookkeeping, no decision asked for. */
  low: boolean;
}

/** Syncs the items; returns the error of each item that failed (by position), if any. */
export type SyncItems = (items: WorkItem[]) => Promise<readonly unknown[] | undefined>;

export interface WorkQueueOptions {
  maxBackoffMs?: number;
  lowLaneMaxWaitMs?: number;
  /** Most keys handed to one sync call (default 1). */
  maxBatch?: number;
  /**
   * Most low-lane keys in one sync call (default: maxBatch): up to maxBatch keys are
   * taken in priority order and, when the low lane's turn came among them, more of it
   * until this many are low ones — for a sync that does the status bookkeeping of many
   * keys at the cost of a few.
   */
  maxLowBatch?: number;
  /**
   * Most keys handed to one sync call while a backlog waits (default: maxBatch): a call
   * takes one in BACKLOG_SHARE of the keys waiting in the decision lane, at least
   * maxBatch and at most this many. A long queue then goes in fewer, larger calls (a
   * transaction's round trips shared by more keys), while a lone change still goes on
   * its own at once.
   */
  maxBacklogBatch?: number;
}

/** A backlog's batch: one in this many of the keys waiting (see maxBacklogBatch). */
export const BACKLOG_SHARE = 8;

export class WorkQueue {
  /** Queued keys: when first added (ms, performance.now()) and in which lane. */
  private readonly queued = new Map<string, { at: number; low: boolean }>();
  private readonly high = new Lane();
  private readonly low = new Lane();
  private readonly failures = new Map<string, number>();
  private running = false;
  private stopped = false;
  private wake?: () => void;
  private idleWaiters: (() => void)[] = [];
  private active = 0;

  private readonly maxBackoffMs: number;
  private readonly lowLaneMaxWaitMs: number;
  private readonly maxBatch: number;
  private readonly maxLowBatch: number;
  private readonly maxBacklogBatch: number;

  constructor(
    private readonly sync: SyncItems,
    private readonly onError: (key: string, err: unknown) => void = () => {},
    opts: WorkQueueOptions = {},
  ) {
    this.maxBackoffMs = opts.maxBackoffMs ?? 30_000;
    this.lowLaneMaxWaitMs = opts.lowLaneMaxWaitMs ?? 2000;
    this.maxBatch = Math.max(1, opts.maxBatch ?? 1);
    this.maxLowBatch = Math.max(1, opts.maxLowBatch ?? this.maxBatch);
    this.maxBacklogBatch = Math.max(this.maxBatch, opts.maxBacklogBatch ?? this.maxBatch);
  }

  add(key: string): void {
    if (this.stopped) return;
    const q = this.queued.get(key);
    if (q && !q.low) return;
    // A key waiting in the low lane moves up (its stale low entry is skipped later).
    this.queued.set(key, { at: q?.at ?? performance.now(), low: false });
    this.high.push(key);
    this.wake?.();
  }

  /** Queues status bookkeeping: processed after the decisions waiting, or after a bounded wait. */
  addLow(key: string): void {
    if (this.stopped || this.queued.has(key)) return;
    this.queued.set(key, { at: performance.now(), low: true });
    this.low.push(key);
    this.wake?.();
  }

  /** Something is queued or being processed. */
  get busy(): boolean {
    return this.queued.size > 0 || this.active > 0;
  }

  /** Resolves when nothing is queued or being processed (tests use it). */
  idle(): Promise<void> {
    if (!this.queued.size && this.active === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.loop();
  }

  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  private next(): string | undefined {
    for (;;) {
      const oldLow = this.low.peek();
      const lowDue =
        oldLow !== undefined &&
        performance.now() - (this.queued.get(oldLow)?.at ?? 0) > this.lowLaneMaxWaitMs;
      const lane = this.high.length && !lowDue ? this.high : this.low.length ? this.low : this.high;
      const key = lane.shift();
      if (key === undefined) return undefined;
      const q = this.queued.get(key);
      // Skip entries that were processed already or moved to the other lane.
      if (!q || q.low !== (lane === this.low)) continue;
      return key;
    }
  }

  /** The next key of the low lane, stale entries skipped. */
  private nextLow(): string | undefined {
    for (;;) {
      const key = this.low.shift();
      if (key === undefined) return undefined;
      if (this.queued.get(key)?.low) return key;
    }
  }

  private take(items: WorkItem[], key: string): void {
    const q = this.queued.get(key);
    this.queued.delete(key);
    items.push({ key, queuedAt: q?.at ?? performance.now(), low: q?.low ?? false });
  }

  private async loop(): Promise<void> {
    let yielded = performance.now();
    while (!this.stopped) {
      // On SQLite a sync never waits for I/O, so a long queue would run on microtasks
      // alone and starve the sockets (agent heartbeats, API requests): let them in.
      if (performance.now() - yielded > 5) {
        await new Promise((r) => setImmediate(r));
        yielded = performance.now();
      }
      const items: WorkItem[] = [];
      const batch = Math.min(
        this.maxBacklogBatch,
        Math.max(this.maxBatch, Math.floor(this.high.length / BACKLOG_SHARE)),
      );
      while (items.length < batch) {
        const key = this.next();
        if (key === undefined) break;
        this.take(items, key);
      }
      // The low lane's turn came: more of it, up to its own bound.
      let lows = items.filter((i) => i.low).length;
      for (; lows > 0 && lows < this.maxLowBatch; lows++) {
        const key = this.nextLow();
        if (key === undefined) break;
        this.take(items, key);
      }
      if (!items.length) {
        for (const w of this.idleWaiters.splice(0)) w();
        await new Promise<void>((r) => {
          this.wake = r;
        });
        this.wake = undefined;
        continue;
      }
      this.active += items.length;
      let errors: readonly unknown[] | undefined;
      try {
        errors = await this.sync(items);
      } catch (err) {
        errors = items.map(() => err);
      }
      for (const [i, { key }] of items.entries()) {
        const err = errors?.[i];
        if (err === undefined) {
          this.failures.delete(key);
          continue;
        }
        const n = (this.failures.get(key) ?? 0) + 1;
        this.failures.set(key, n);
        try {
          this.onError(key, err);
        } catch {
          // A failing error report must not stop the queue.
        }
        const delay = Math.min(this.maxBackoffMs, 100 * 2 ** n);
        setTimeout(() => this.add(key), delay).unref();
      }
      this.active -= items.length;
    }
  }
}
