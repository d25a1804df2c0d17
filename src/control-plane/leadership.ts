// Which replica runs the controllers. Every replica writes its row in `replicas` and
// tries the leader's lease at each tick; the one that holds it starts the controllers
// with a fenced store (every controller transaction commits only under its epoch) and
// renews the lease; the others keep trying, and the first to find it lapsed leads next.
//
// A leader that cannot renew (the database away, this process stalled) stops counting
// itself the leader when its lease would have expired by its own clock, before any other
// replica may take it: the fence in the database refuses its late writes anyway.
//
// SQLite: one process owns the database file; it leads from the start, for good.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import {
  acquireLease,
  type Fence,
  forgetReplicas,
  heartbeatReplica,
  type Lease,
  releaseLease,
  type Store,
} from '../store/index.js';

/** The lease a leader holds (renewed every DEFAULT_LEASE_RENEW_MS). */
export const DEFAULT_LEASE_TTL_MS = 10_000;
export const DEFAULT_LEASE_RENEW_MS = 2_000;
/** A replica row unseen this long is removed (its process is gone). */
export const REPLICA_FORGET_MS = 10 * 60_000;
/** SQLite's single process holds the lease for good. */
const FOREVER_MS = 100 * 365 * 24 * 3600_000;

export interface LeadershipOptions {
  store: Store;
  /** This replica's row. */
  name: string;
  address: string;
  gateway: string;
  version: string;
  ttlMs?: number;
  renewMs?: number;
  /** This replica now leads with `epoch`: start the controllers (with `fence`). */
  onLead: (epoch: number) => Promise<void>;
  /** This replica no longer leads: stop them. */
  onLose: () => Promise<void>;
  log?: (msg: string, err?: unknown) => void;
}

/** The default replica name: this host and the API's port. */
export function defaultReplicaName(port: number): string {
  return `${hostname()}-${port}`;
}

export class Leadership {
  private epochHeld?: number;
  /** By this process's clock, the lease is ours until then. */
  private validUntil = 0;
  private timer?: NodeJS.Timeout;
  private ticking?: Promise<void>;
  private stopped = false;
  private readonly startedMs = Date.now();
  /**
   * Starting and stopping the controllers, one after the other, apart from the lease's
   * ticks: a start that reads a large fleet must not hold up the renewals.
   */
  private transitions: Promise<void> = Promise.resolve();
  /** The lease as last read (this replica's or another's). */
  lease?: Lease;
  /** How many times this replica took the lease. */
  terms = 0;
  readonly fence: Fence;
  /** NAME#MARK: this process in the lease. */
  readonly holder: string;

  constructor(private readonly opts: LeadershipOptions) {
    const ttl = this.ttl;
    if (!(opts.store.engine !== 'postgres' || (ttl > 0 && this.renew > 0 && this.renew * 2 <= ttl)))
      throw new Error(
        `lease: renew every ${this.renew} ms must be at most half its ${ttl} ms (both positive)`,
      );
    // A mark of this process: a replica restarted under its name is another holder, so
    // it never shares an epoch with a process of the same name that may still run.
    this.holder = `${opts.name}#${randomBytes(4).toString('hex')}`;
    this.fence = { holder: this.holder, epoch: () => this.epoch };
  }

  private get ttl(): number {
    return this.opts.store.engine === 'postgres' ? (this.opts.ttlMs ?? DEFAULT_LEASE_TTL_MS) : FOREVER_MS;
  }

  private get renew(): number {
    return this.opts.renewMs ?? DEFAULT_LEASE_RENEW_MS;
  }

  /** The epoch this replica leads with, while its lease holds by its own clock. */
  get epoch(): number | undefined {
    return this.epochHeld !== undefined && Date.now() < this.validUntil ? this.epochHeld : undefined;
  }

  get leading(): boolean {
    return this.epoch !== undefined;
  }

  /** Writes this replica's row and tries the lease once; then keeps at it. */
  async start(): Promise<void> {
    await this.tick();
    await this.transitions;
    // SQLite too: its row's `seen` stays current (the lease is its own for good).
    const loop = () => {
      if (this.stopped) return;
      // The leader renews at its pace; the others look twice as often, to take over soon.
      const wait = this.epochHeld !== undefined ? this.renew : Math.max(250, this.renew / 2);
      this.timer = setTimeout(() => {
        this.ticking = this.tick().finally(loop);
      }, wait);
      this.timer.unref();
    };
    loop();
  }

  /** Steps down (the lease is released for another to take at once) and removes this replica's row. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.ticking;
    const epoch = this.epochHeld;
    if (epoch !== undefined) this.lose();
    await this.transitions;
    const { store, name } = this.opts;
    if (epoch !== undefined) await releaseLease(store, this.holder, epoch).catch(() => undefined);
    await forgetReplicas(store, { name }).catch(() => undefined);
  }

  private async tick(): Promise<void> {
    const { store, name } = this.opts;
    const asked = Date.now();
    try {
      await heartbeatReplica(store, {
        name,
        address: this.opts.address,
        gateway: this.opts.gateway,
        version: this.opts.version,
        startedMs: this.startedMs,
      });
      // SQLite: one process owns the file; it takes the lease from any earlier one.
      const lease = await acquireLease(store, this.holder, this.ttl, {
        force: store.engine !== 'postgres',
      });
      this.lease = lease;
      if (this.stopped) return;
      if (lease.holder === this.holder) {
        // Counted from before the request: the database's expiry is later than this.
        this.validUntil = asked + this.ttl;
        if (this.epochHeld !== lease.epoch) {
          if (this.epochHeld !== undefined) this.lose();
          const epoch = lease.epoch;
          this.epochHeld = epoch;
          this.terms++;
          this.opts.log?.(`leading the control plane with epoch ${epoch}`);
          this.transition(() => this.opts.onLead(epoch));
        }
      } else if (this.epochHeld !== undefined) {
        this.opts.log?.(`replica ${lease.replica} leads now (epoch ${lease.epoch}); stepping down`);
        this.lose();
      }
    } catch (err) {
      this.opts.log?.('leader lease: could not reach the database; retried', err);
      if (this.epochHeld !== undefined && Date.now() >= this.validUntil) {
        this.opts.log?.('leader lease lapsed without renewal; stepping down');
        this.lose();
      }
    }
  }

  private lose(): void {
    this.epochHeld = undefined;
    this.validUntil = 0;
    this.transition(() => this.opts.onLose());
  }

  private transition(fn: () => Promise<void>): void {
    this.transitions = this.transitions
      .then(fn)
      .catch((err) => this.opts.log?.('starting or stopping the controllers failed', err));
  }
}
