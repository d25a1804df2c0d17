// Errors that know how to render themselves: a stable code, an HTTP status, a message
// that says what to fix, and — for input errors — the field paths at fault.
export interface FieldError {
  /** Dotted path into the request or manifest, e.g. `spec.location.latitude`. */
  readonly path: string;
  readonly message: string;
}

export const PROBLEM_CODES = {
  invalid_json: 400,
  /** A protocol body (the agent's enrolment) that does not match its schema. */
  invalid_request: 400,
  invalid_yaml: 400,
  validation_failed: 422,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  parent_not_found: 404,
  already_exists: 409,
  conflict: 409,
  has_dependents: 409,
  quota_exceeded: 422,
  checksum_mismatch: 422,
  unsupported_media_type: 415,
  payload_too_large: 413,
  method_not_allowed: 405,
  /** Too many failed authentications from one source; the reply says when to retry. */
  too_many_requests: 429,
  node_unreachable: 503,
  internal: 500,
} as const;
export type ProblemCode = keyof typeof PROBLEM_CODES;

export class Problem extends Error {
  readonly status: number;
  /** For batch requests (apply): the 0-based index of the document at fault. */
  document?: number;
  /** Sent as Retry-After (429s). */
  retryAfterS?: number;

  constructor(
    readonly code: ProblemCode,
    message: string,
    readonly details: readonly FieldError[] = [],
  ) {
    super(message);
    this.status = PROBLEM_CODES[code];
  }

  /** Too many failed authentications: retry after this many seconds. */
  static tooManyFailures(retryAfterS: number): Problem {
    const p = new Problem(
      'too_many_requests',
      `too many failed authentications from your address; retry in ${retryAfterS} s`,
    );
    p.retryAfterS = retryAfterS;
    return p;
  }

  static invalid(details: readonly FieldError[]): Problem {
    const first = details[0];
    const summary = details.map((d) => (d.path ? `${d.path}: ${d.message}` : d.message)).join('; ');
    return new Problem('validation_failed', first ? summary : 'invalid request', details);
  }

  toJSON() {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.details.length ? { details: this.details } : {}),
        ...(this.document !== undefined ? { document: this.document } : {}),
      },
    };
  }
}
