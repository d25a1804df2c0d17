// Node health runs on the leader, but an agent talks to whichever replica it reached. A
// replica that does not lead collects the agents it heard from (connected, heartbeat)
// and passes them on once a second, as one row of the change feed; the leader's node
// health counts them as if its own gateway had heard them. A note that cannot be written
// is kept and sent with the next.
import type { Store } from '../store/index.js';

export const PRESENCE_INTERVAL_MS = 1000;

export class PresenceNotes {
  private connectedKeys = new Set<string>();
  private seenKeys = new Set<string>();
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

  /** Flushes every interval while `wanted()` (this replica does not lead); else drops the notes. */
  start(wanted: () => boolean, intervalMs = PRESENCE_INTERVAL_MS): void {
    this.timer = setInterval(() => {
      if (!wanted()) {
        this.connectedKeys.clear();
        this.seenKeys.clear();
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
    if (!this.connectedKeys.size && !this.seenKeys.size) return;
    const connected = this.connectedKeys;
    const seen = this.seenKeys;
    this.connectedKeys = new Set();
    this.seenKeys = new Set();
    try {
      await this.store.transaction(async (tx) =>
        tx.notePresence({ replica: this.store.replica, connected: [...connected], seen: [...seen] }),
      );
    } catch (err) {
      for (const k of connected) this.connectedKeys.add(k);
      for (const k of seen) this.seenKeys.add(k);
      this.log('passing the agents heard here to the leader failed; sent with the next note', err);
    }
  }
}
