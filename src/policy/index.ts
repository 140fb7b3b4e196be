export { type PolicyOverride, parsePolicyOverride, policyOverrideSchema } from "./policy-override.ts";
export {
  configuredKeyProblems,
  type EffectivePolicy,
  type KeyFingerprinter,
  type PolicyKey,
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
  compileRepositoryGlob,
  type GlobMatch,
  matchesAnyGlob,
  type RepositoryGlob,
} from "./repository-glob.ts";
