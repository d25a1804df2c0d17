// Repeated failed authentications from one source (an IP address) are answered with 429
// and Retry-After for the rest of the window, and counted. A credential that verifies is
// never refused, counted or delayed — even from a source that is over its limit (a NAT
// shared with a broken client) — and resets the source's count. The secrets are 256-bit:
// the limit is not what stops guessing; it tells the guesser and the operator apart from
// a working client, and bounds what one source can make the control plane log.
/** 'replica': a request one control-plane replica signed for another (agent requests passed on). */
export const AUTH_KINDS = ['api-token', 'join-token', 'node-credential', 'replica'] as const;
export type AuthKind = (typeof AUTH_KINDS)[number];

export interface FailureLimiterOptions {
  /** Failures a source may have within the window… */
  maxFailures?: number;
  /** …of this length; past it, the source is refused until the window ends. */
  windowMs?: number;
  /** Sources remembered at most (the oldest are forgotten first). */
  maxSources?: number;
  now?: () => number;
}

export const DEFAULT_AUTH_FAILURES = 20;
export const DEFAULT_AUTH_WINDOW_MS = 60_000;

export class AuthFailureLimiter {
  private readonly sources = new Map<string, { start: number; failures: number }>();
  private readonly maxFailures: number;
  private readonly windowMs: number;
  private readonly maxSources: number;
  private readonly now: () => number;
  readonly failures: Record<AuthKind, number> = {
    'api-token': 0,
    'join-token': 0,
    'node-credential': 0,
    replica: 0,
  };
  readonly throttled: Record<AuthKind, number> = {
    'api-token': 0,
    'join-token': 0,
    'node-credential': 0,
    replica: 0,
  };

  constructor(opts: FailureLimiterOptions = {}) {
    this.maxFailures = opts.maxFailures ?? DEFAULT_AUTH_FAILURES;
    this.windowMs = opts.windowMs ?? DEFAULT_AUTH_WINDOW_MS;
    this.maxSources = opts.maxSources ?? 100_000;
    this.now = opts.now ?? Date.now;
  }

  /**
   * Records a failed authentication from the source; returns how many seconds it must
   * wait (answer 429 with Retry-After), or 0 while it is within the limit (answer 401).
   */
  failed(source: string, kind: AuthKind): number {
    this.failures[kind]++;
    const now = this.now();
    let s = this.sources.get(source);
    if (!s || now - s.start >= this.windowMs) {
      this.sources.delete(source);
      if (this.sources.size >= this.maxSources) this.sources.delete(this.sources.keys().next().value!);
      s = { start: now, failures: 0 };
      this.sources.set(source, s);
    }
    s.failures++;
    if (s.failures <= this.maxFailures) return 0;
    this.throttled[kind]++;
    return Math.max(1, Math.ceil((s.start + this.windowMs - now) / 1000));
  }

  succeeded(source: string): void {
    this.sources.delete(source);
  }
}
