export { type City, cityNames, findCity } from './cities.js';
export * from './common.js';
export { COUNTRY_CODES, isCountryCode } from './countries.js';
export type { CheckContext, KindDef, ParentKey } from './kind.js';
export { PARENT_KINDS } from './kind.js';
export * from './kinds/image.js';
export { findKind, KINDS } from './kinds/index.js';
export * from './kinds/migration.js';
export * from './kinds/node.js';
export * from './kinds/project.js';
export * from './kinds/provider.js';
export * from './kinds/site.js';
export * from './kinds/switching.js';
export * from './kinds/user.js';
export * from './kinds/workload.js';
export {
  API_VERSION,
  type Manifest,
  type Metadata,
  manifestSchema,
  objectSchema,
  type ResourceObject,
} from './manifest.js';
export { type FieldError, PROBLEM_CODES, Problem, type ProblemCode } from './problem.js';
export * from './sovereignty.js';
export { coercingAjv, formatErrors, strictAjv, validate } from './validate.js';
