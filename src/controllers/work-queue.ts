// A deduplicating work queue for level-triggered controllers: handlers only enqueue a
// key; the worker calls sync(key), which re-reads current state. Failures are retried
// with exponential backoff. Two lanes: changes that need a decision (a new or changed
// workload, a failed node) go before mere status bookkeeping (an agent's report), which
// still runs once it has waited `lowLaneMaxWaitMs`, so that neither starves.

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

  constructor(
    /** `low`: the key waited in the low lane only (status bookkeeping, no decision asked). */
    private readonly sync: (key: string, queuedAt: number, low: boolean) => Promise<void>,
    private readonly onError: (key: string, err: unknown) => void = () => {},
    private readonly maxBackoffMs = 30_000,
    private readonly lowLaneMaxWaitMs = 2000,
  ) {}

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

  private async loop(): Promise<void> {
    let yielded = performance.now();
    while (!this.stopped) {
      // On SQLite a sync never waits for I/O, so a long queue would run on microtasks
      // alone and starve the sockets (agent heartbeats, API requests): let them in.
      if (performance.now() - yielded > 5) {
        await new Promise((r) => setImmediate(r));
        yielded = performance.now();
      }
      const key = this.next();
      if (key === undefined) {
        for (const w of this.idleWaiters.splice(0)) w();
        await new Promise<void>((r) => {
          this.wake = r;
        });
        this.wake = undefined;
        continue;
      }
      const q = this.queued.get(key);
      this.queued.delete(key);
      this.active++;
      try {
        await this.sync(key, q?.at ?? performance.now(), q?.low ?? false);
        this.failures.delete(key);
      } catch (err) {
        const n = (this.failures.get(key) ?? 0) + 1;
        this.failures.set(key, n);
        this.onError(key, err);
        const delay = Math.min(this.maxBackoffMs, 100 * 2 ** n);
        setTimeout(() => this.add(key), delay).unref();
      } finally {
        this.active--;
      }
    }
  }
}
