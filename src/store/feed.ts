// The durable change feed on PostgreSQL: every writing transaction leaves one row in
// `changes`, numbered without gaps in commit order (continuum_seal holds the feed's
// lock until its commit), with the changes it made and the positions of its audit
// events. Each replica follows it: batches of its own commits and those of every other
// replica are published in this process strictly in feed order, so a controller, the
// agent gateway or an event stream on any replica sees every commit once, in the order
// the database committed them.
//
// A NOTIFY on each commit wakes the followers; a poll every second catches up whatever a
// lost notification or a dropped LISTEN connection missed. Rows are kept for a while
// (FEED_RETENTION_MS) so that a replica back from a pause reads what it missed.
import { sql } from 'kysely';
import type pg from 'pg';
import type { AuditEvent, CommittedBatch, FeedBody, Store } from './store.js';

/** How long feed rows are kept for replicas that fell behind. */
export const FEED_RETENTION_MS = 60 * 60_000;
const PAGE = 500;

export interface FeedFollowerOptions {
  /** How often the feed is read without a notification (default 1 s). */
  pollMs?: number;
  log?: (msg: string, err?: unknown) => void;
  /**
   * Rows this follower needed were pruned before it read them (it was away longer than
   * the retention): whoever keeps state from the feed must read the store anew.
   */
  onGap?: (from: number, to: number) => void;
}

interface FeedRow {
  seq: number;
  replica: string;
  events_from: number;
  events_to: number;
  body: string;
}

export class FeedFollower {
  /** The last feed number published in this process. */
  private position = 0;
  /** This process's committed batches waiting for the feed numbers before theirs. */
  private readonly local = new Map<number, CommittedBatch>();
  private readonly waiters = new Map<number, (() => void)[]>();
  private fetching?: Promise<void>;
  private again = false;
  private client?: pg.Client;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private channel = '';
  /** Batches published from the feed table (other replicas' and late local ones). */
  fetched = 0;

  constructor(
    private readonly store: Store,
    private readonly opts: FeedFollowerOptions = {},
  ) {}

  get last(): number {
    return this.position;
  }

  /** Starts at the feed's end; from then on this store's commits are published through it. */
  async start(): Promise<void> {
    const row = await this.store.kysely
      .selectFrom('changes')
      .select((eb) => eb.fn.max('seq').as('m'))
      .executeTakeFirst();
    this.position = Number(row?.m ?? 0);
    // continuum_seal notifies on the channel of the schema it wrote in.
    const { rows } = await sql<{ s: string }>`select current_schema() as s`.execute(this.store.kysely);
    this.channel = `continuum_feed_${rows[0]!.s}`;
    this.store.deliverThrough((b) => this.committed(b));
    await this.listen();
    this.timer = setInterval(() => this.kick(), this.opts.pollMs ?? 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.store.deliverThrough(undefined);
    if (this.timer) clearInterval(this.timer);
    await this.fetching;
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => undefined);
    // Whoever still waits is released: their transactions committed.
    for (const batch of [...this.local.values()].sort((a, b) => a.seq! - b.seq!)) this.store.publish(batch);
    this.local.clear();
    for (const fns of this.waiters.values()) for (const fn of fns) fn();
    this.waiters.clear();
  }

  /** A batch this process committed: published once every batch before it is. */
  private committed(b: CommittedBatch): Promise<void> {
    const seq = b.seq!;
    if (seq <= this.position || this.stopped) {
      if (this.stopped && seq > this.position) this.store.publish(b);
      return Promise.resolve();
    }
    this.local.set(seq, b);
    this.drain();
    if (seq <= this.position) return Promise.resolve();
    // A commit of another replica (or of this one, not handed over yet) comes first.
    this.kick();
    return new Promise((resolve) => {
      const list = this.waiters.get(seq);
      if (list) list.push(resolve);
      else this.waiters.set(seq, [resolve]);
    });
  }

  /** Publishes the local batches that are next in line. */
  private drain(): void {
    for (let b = this.local.get(this.position + 1); b; b = this.local.get(this.position + 1)) {
      this.local.delete(this.position + 1);
      this.advance(b);
    }
  }

  private advance(b: CommittedBatch): void {
    this.position = b.seq!;
    try {
      this.store.publish(b);
    } finally {
      const fns = this.waiters.get(b.seq!);
      if (fns) {
        this.waiters.delete(b.seq!);
        for (const fn of fns) fn();
      }
    }
  }

  private kick(): void {
    if (this.stopped) return;
    if (this.fetching) {
      this.again = true;
      return;
    }
    this.fetching = this.fetch()
      .catch((err) => this.opts.log?.('change feed: reading it failed; retried', err))
      .finally(() => {
        this.fetching = undefined;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  /** Reads the rows after the position and publishes them in order. */
  private async fetch(): Promise<void> {
    for (;;) {
      const rows = (await this.store.kysely
        .selectFrom('changes')
        .select(['seq', 'replica', 'events_from', 'events_to', 'body'])
        .where('seq', '>', this.position)
        .orderBy('seq')
        .limit(PAGE)
        .execute()) as FeedRow[];
      if (this.stopped || !rows.length) return;
      const first = Number(rows[0]!.seq);
      if (first > this.position + 1) {
        this.opts.onGap?.(this.position + 1, first - 1);
        this.opts.log?.(
          `change feed: rows ${this.position + 1}–${first - 1} were pruned before this replica read them`,
        );
        this.position = first - 1;
      }
      // The audit events of the rows not committed here, in one read.
      const remote = rows.filter((r) => !this.local.has(Number(r.seq)));
      const events = new Map<number, AuditEvent>();
      if (remote.length) {
        const from = Math.min(...remote.map((r) => Number(r.events_from)));
        const to = Math.max(...remote.map((r) => Number(r.events_to)));
        for (const e of await this.store.eventsAt(from, to)) events.set(e.position, e);
      }
      for (const r of rows) {
        const seq = Number(r.seq);
        if (seq <= this.position) continue;
        if (seq !== this.position + 1) break;
        const mine = this.local.get(seq);
        if (mine) {
          this.local.delete(seq);
          this.advance(mine);
          continue;
        }
        const evs: AuditEvent[] = [];
        for (let p = Number(r.events_from); p <= Number(r.events_to); p++) {
          const e = events.get(p);
          if (e) evs.push(e);
        }
        this.fetched++;
        const body = JSON.parse(r.body) as FeedBody;
        this.advance({
          seq,
          events: evs,
          changes: body.changes,
          ...(body.presence ? { presence: body.presence } : {}),
        });
      }
      this.drain();
      if (rows.length < PAGE) return;
    }
  }

  /** Opens the LISTEN connection; on failure polling goes on and it is tried again. */
  private async listen(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.listenOnce();
    } catch (err) {
      this.opts.log?.('change feed: LISTEN failed; polling meanwhile, retried in 1 s', err);
      setTimeout(() => void this.listen().then(() => this.kick()), 1000).unref();
    }
  }

  private async listenOnce(): Promise<void> {
    const c = await this.store.connection();
    c.on('notification', (n) => {
      const [seqText, replica] = (n.payload ?? '').split(' ');
      const seq = Number(seqText);
      if (seq <= this.position || this.local.has(seq)) return;
      // This replica's own commit is handed over in a moment: read it only if it is not.
      if (replica === this.store.replica)
        setTimeout(() => seq > this.position && !this.local.has(seq) && this.kick(), 200).unref();
      else this.kick();
    });
    c.on('error', (err) => {
      this.opts.log?.('change feed: the LISTEN connection failed; reconnecting', err);
      void c.end().catch(() => undefined);
    });
    c.on('end', () => {
      if (this.client !== c || this.stopped) return;
      this.client = undefined;
      setTimeout(() => void this.listen().then(() => this.kick()), 1000).unref();
    });
    await c.query(`LISTEN ${this.channel}`);
    if (this.stopped) {
      await c.end();
      return;
    }
    this.client = c;
  }
}

/** Deletes feed rows older than the retention, always keeping the latest (it numbers the next). */
export async function pruneFeed(store: Store, retentionMs = FEED_RETENTION_MS): Promise<number> {
  const res = await store.kysely
    .deleteFrom('changes')
    .where('at_ms', '<', Date.now() - retentionMs)
    .where('seq', '<', (eb: any) => eb.selectFrom('changes').select((e: any) => e.fn.max('seq').as('m')))
    .executeTakeFirst();
  return Number(res.numDeletedRows);
}
