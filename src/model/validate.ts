// Schema validation with messages a person can act on: every error names the field path
// (`spec.location.latitude`) and says what is wrong, unknown fields included.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { TSchema } from 'typebox';
import type { FieldError } from './problem.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

function makeAjv(coerceTypes: boolean): Ajv {
  const ajv = new Ajv({
    allErrors: true,
    strict: false,
    coerceTypes,
    removeAdditional: false,
    useDefaults: false,
  });
  addFormats(ajv);
  return ajv;
}

/** For bodies and manifests: no coercion, so "45" is not a latitude. */
export const strictAjv = makeAjv(false);
/** For query strings and path parameters, which are strings on the wire. */
export const coercingAjv = makeAjv(true);

function joinPath(base: string, instancePath: string): string {
  const parts = instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  let out = base;
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : out ? `.${p}` : p;
  return out;
}

function describe(e: ErrorObject): { extra?: string; message: string } {
  const p = e.params as Record<string, any>;
  switch (e.keyword) {
    case 'additionalProperties':
      return { extra: p.additionalProperty, message: `unknown field '${p.additionalProperty}'` };
    case 'required':
      return { extra: p.missingProperty, message: 'is required' };
    case 'enum':
      return { message: `must be one of: ${(p.allowedValues as unknown[]).join(', ')}` };
    case 'const':
      return { message: `must be ${JSON.stringify(p.allowedValue)}` };
    case 'type':
      return { message: `must be ${p.type === 'integer' ? 'an integer' : `of type ${p.type}`}` };
    case 'pattern':
      return { message: `has an invalid format (must match ${p.pattern})` };
    case 'uniqueItems':
      return { message: `has duplicate items (positions ${p.j} and ${p.i})` };
    default:
      return { message: e.message ?? 'is invalid' };
  }
}

export function formatErrors(errors: readonly ErrorObject[] | null | undefined, base = ''): FieldError[] {
  const out: FieldError[] = [];
  const seen = new Set<string>();
  for (const e of errors ?? []) {
    // anyOf/oneOf summaries repeat what their branches already said.
    if (e.keyword === 'anyOf' || e.keyword === 'oneOf' || e.keyword === 'if') continue;
    const d = describe(e);
    const path = joinPath(base, e.instancePath);
    const full = d.extra && e.keyword === 'required' ? (path ? `${path}.${d.extra}` : d.extra) : path;
    const key = `${full}\u0000${d.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ path: full, message: d.message });
  }
  return out;
}

const compiled = new WeakMap<TSchema, ValidateFunction>();

/** Validates a value against a schema; returns field errors (empty when valid). */
export function validate(schema: TSchema, value: unknown, base = ''): FieldError[] {
  let fn = compiled.get(schema);
  if (!fn) {
    fn = strictAjv.compile(schema);
    compiled.set(schema, fn);
  }
  return fn(value) ? [] : formatErrors(fn.errors, base);
}
