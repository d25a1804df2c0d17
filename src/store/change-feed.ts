// The change feed: every write of a resource or an instance, status writes included,
// published in commit order once its transaction has committed. Controllers are woken by
// it (a handler only queues a key and re-reads current state); the audit log is a record
// for people, not a wake-up channel. This is the process's side of the feed: on
// PostgreSQL every committed batch is also a row of the durable feed (feed.ts) that every
// replica follows, and a FeedFollower publishes its own and the others' batches here in
// commit order; on SQLite (one process) batches are published as they commit.
import type { InstanceRecord } from './instances.js';
import type { ResourceTableName } from './schema.js';

export const CHANGE_PARTS = ['created', 'spec', 'status', 'deleted'] as const;
/** What a write changed: a new row, the user's side (spec, labels), the system's side, or the row's end. */
export type ChangePart = (typeof CHANGE_PARTS)[number];

/** What an instance held on its node when its row went (for the scheduler's books). */
export interface ReleasedInstance {
  readonly provider: string;
  readonly node: string;
  readonly vcpus: number;
  readonly memoryMiB: number;
  readonly diskGiB: number;
  readonly accelerators: number;
}

/**
 * An instance row written by a committed transaction (its desired side as written), and
 * where it was bound before when the write moved it: the agent gateway pushes these to
 * the nodes concerned without reading them back.
 */
export interface InstanceWrite {
  readonly record: InstanceRecord;
  readonly previous?: { readonly provider: string; readonly node: string };
}

interface ChangeBase {
  /** Position in the feed: a later change has a higher number. */
  readonly seq: number;
  readonly part: ChangePart;
  /** Who wrote it, when the writer said (Store.transaction's `by`): a controller skips its own. */
  readonly by?: string;
}

export interface ResourceChangeNote extends ChangeBase {
  readonly table: ResourceTableName;
  readonly parent: string;
  readonly name: string;
  /** A status write no decision depends on (heartbeat time, metrics). */
  readonly bookkeeping?: true;
}

export interface InstanceChangeNote extends ChangeBase {
  readonly table: 'instances';
  /** The project. */
  readonly parent: string;
  readonly name: string;
  readonly workload: string;
  /** The desired side as written ('created' and 'spec'). */
  readonly write?: InstanceWrite;
  /** A live row deleted: what it held on its node. */
  readonly released?: ReleasedInstance;
}

export type Change = ResourceChangeNote | InstanceChangeNote;
/** A change before the feed numbers it. */
export type NewChange = Omit<ResourceChangeNote, 'seq'> | Omit<InstanceChangeNote, 'seq'>;

export type ChangeListener = (changes: readonly Change[]) => void;

export class ChangeFeed {
  private seq = 0;
  private readonly listeners = new Set<ChangeListener>();
  /** A listener threw: reported here, never to the writer whose transaction committed. */
  onListenerError: (err: unknown) => void = (err) => console.error('change feed listener failed', err);

  /** Calls `fn` with each committed batch, in order; returns the unsubscribe function. */
  subscribe(fn: ChangeListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** The sequence number of the latest published change. */
  get last(): number {
    return this.seq;
  }

  publish(changes: readonly NewChange[]): void {
    if (!changes.length) return;
    // `seq` first: on Node 20 a property written after a spread costs ~1.5 µs.
    const numbered = changes.map((c) => ({ seq: ++this.seq, ...c }) as Change);
    for (const fn of this.listeners) {
      try {
        fn(numbered);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }
}
