export { policyFingerprint } from "./policy-fingerprint.ts";
export { parsePolicyOverride } from "./policy-override.ts";
export {
  type ConfiguredPolicies,
  type EffectivePolicy,
  type KmsKeyState,
  PolicyRegistry,
  type PolicyRegistryDeps,
  PolicyValidationError,
  toPolicyView,
} from "./policy-registry.ts";
export {
  checkProject,
  createListeners,
  createMemoryPolicyStore,
  type PolicyStore,
  RELOAD_ALL,
  toJson,
} from "./policy-store.ts";
export { projectOf } from "./project.ts";
export {
  applyOptions,
  crossOptionProblems,
  fileDefaultsSchema,
  fileProjectSchema,
  type KeyFileReader,
  type KeylessInput,
  type LookupErrorAction,
  lookupErrorActions,
  NOT_IN_FINGERPRINT,
  OPTION_DEFAULTS,
  optionWarnings,
  type PolicyKey,
  type PolicyOverride,
  PROJECT_OPTION_NAMES,
  type ProjectMode,
  type ProjectOptionName,
  type ProjectOptions,
  PUBLIC_GOOD,
  policyAuthorities,
  policyOverrideSchema,
  policyRequirements,
  projectModes,
  projectOptionSchemas,
  type RawProjectOptions,
  type ResolveContext,
  reachProblems,
  UPSTREAM_NAME_RE,
} from "./project-options.ts";
export {
  compileRepositoryGlob,
  type GlobMatch,
  matchesAnyGlob,
  type RepositoryGlob,
} from "./repository-glob.ts";
