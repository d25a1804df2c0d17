// Node health runs on the leader, but an agent talks to whichever replica it reached. A
// replica that does not lead collects the agents it heard from (connected, heartbeat)
// and passes them on once a second, as one row of the change feed; the leader's node
// health counts them as if its own gateway had heard them. A note that cannot be written
// is kept and sent with the next. The progress of the migrations its agents send goes the
// same way, to the leader's migration controller.
import type { TransferProgress } from '../protocol/index.js';
import type { MigrationProgressNote, Store } from '../store/index.js';

export const PRESENCE_INTERVAL_MS = 1000;

export class PresenceNotes {
  private connectedKeys = new Set<string>();
  private seenKeys = new Set<string>();
  /** The latest progress of each migration sent by an agent here. */
  private progressOf = new Map<string, MigrationProgressNote>();
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<void>;

  constructor(
    private readonly store: Store,
    private readonly log: (msg: string, err?: unknown) => void,
  ) {}

  connected(provider: string, node: string): void {
    this.connectedKeys.add(`${provider}/${node}`);
  }

  seen(provider: string, node: string): void {
    this.seenKeys.add(`${provider}/${node}`);
  }

  progress(migration: string, progress: TransferProgress, provider: string, node: string): void {
    this.progressOf.set(migration, { migration, provider, node, progress });
  }

  /** Flushes every interval while `wanted()` (this replica does not lead); else drops the notes. */
  start(wanted: () => boolean, intervalMs = PRESENCE_INTERVAL_MS): void {
    this.timer = setInterval(() => {
      if (!wanted()) {
        this.connectedKeys.clear();
        this.seenKeys.clear();
        this.progressOf.clear();
        return;
      }
      this.flushing ??= this.flush().finally(() => {
        this.flushing = undefined;
      });
    }, intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flushing;
  }

  private async flush(): Promise<void> {
    if (!this.connectedKeys.size && !this.seenKeys.size && !this.progressOf.size) return;
    const connected = this.connectedKeys;
    const seen = this.seenKeys;
    const progress = this.progressOf;
    this.connectedKeys = new Set();
    this.seenKeys = new Set();
    this.progressOf = new Map();
    try {
      await this.store.transaction(async (tx) =>
        tx.notePresence({
          replica: this.store.replica,
          connected: [...connected],
          seen: [...seen],
          ...(progress.size ? { progress: [...progress.values()] } : {}),
        }),
      );
    } catch (err) {
      for (const k of connected) this.connectedKeys.add(k);
      for (const k of seen) this.seenKeys.add(k);
      // A newer report that came meanwhile wins.
      for (const [m, p] of progress) if (!this.progressOf.has(m)) this.progressOf.set(m, p);
      this.log('passing the agents heard here to the leader failed; sent with the next note', err);
    }
  }
}
