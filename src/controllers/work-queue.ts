// A deduplicating work queue for level-triggered controllers: handlers only enqueue a
// key; the worker calls sync(key), which re-reads current state. Failures are retried
// with exponential backoff.
export class WorkQueue {
  /** Queued keys with the time they were first added (ms, performance.now()). */
  private readonly queued = new Map<string, number>();
  private readonly order: string[] = [];
  private readonly failures = new Map<string, number>();
  private running = false;
  private stopped = false;
  private wake?: () => void;
  private idleWaiters: (() => void)[] = [];
  private active = 0;

  constructor(
    private readonly sync: (key: string, queuedAt: number) => Promise<void>,
    private readonly onError: (key: string, err: unknown) => void = () => {},
    private readonly maxBackoffMs = 30_000,
  ) {}

  add(key: string): void {
    if (this.stopped || this.queued.has(key)) return;
    this.queued.set(key, performance.now());
    this.order.push(key);
    this.wake?.();
  }

  /** Resolves when nothing is queued or being processed (tests use it). */
  idle(): Promise<void> {
    if (!this.order.length && this.active === 0) return Promise.resolve();
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

  private async loop(): Promise<void> {
    let yielded = performance.now();
    while (!this.stopped) {
      // On SQLite a sync never waits for I/O, so a long queue would run on microtasks
      // alone and starve the sockets (agent heartbeats, API requests): let them in.
      if (performance.now() - yielded > 5) {
        await new Promise((r) => setImmediate(r));
        yielded = performance.now();
      }
      const key = this.order.shift();
      if (key === undefined) {
        for (const w of this.idleWaiters.splice(0)) w();
        await new Promise<void>((r) => {
          this.wake = r;
        });
        this.wake = undefined;
        continue;
      }
      const queuedAt = this.queued.get(key) ?? performance.now();
      this.queued.delete(key);
      this.active++;
      try {
        await this.sync(key, queuedAt);
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
