// What the generic resource machinery needs to know about one kind: its names, where it
// lives, its spec/status schemas, the columns lifted out for filtering and the semantic
// checks a schema cannot express.
import type { TSchema } from 'typebox';
import type { ResourceTableName } from '../store/index.js';
import type { FieldError } from './problem.js';

export const PARENT_KINDS = ['provider', 'project'] as const;
export type ParentKey = (typeof PARENT_KINDS)[number];

/** Read-only lookups available to semantic checks (inside the writing transaction). */
export interface CheckContext {
  exists(kind: string, parent: string, name: string): Promise<boolean>;
}

export interface KindDef<Spec = any, Status = any> {
  readonly kind: string;
  readonly plural: ResourceTableName;
  readonly aliases: readonly string[];
  readonly description: string;
  /** Provider- or project-owned kinds are named uniquely within their parent. */
  readonly parent?: ParentKey;
  readonly spec: TSchema;
  readonly status: TSchema;
  /** False for kinds that only the system creates (nodes register through agents). */
  readonly creatable: boolean;
  /** Query-string filters of the list endpoint, each backed by a column. */
  readonly filters: readonly string[];
  columns(spec: Spec, status: Status): Record<string, string>;
  initialStatus(spec: Spec): Status;
  /** Semantic checks beyond the schema; paths are relative to the manifest root. */
  check?(spec: Spec, ctx: CheckContext): Promise<FieldError[]> | FieldError[];
  /** Recomputes status after a spec change (defaults to keeping it). */
  onSpecChange?(spec: Spec, status: Status): Status;
}

export function countryErrors(
  code: string | undefined,
  path: string,
  isKnown: (c: string) => boolean,
): FieldError[] {
  if (code === undefined || isKnown(code)) return [];
  return [
    { path, message: `unknown country code '${code}' (expected an ISO 3166-1 alpha-2 code such as DE)` },
  ];
}
