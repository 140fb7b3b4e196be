export {
  blobDigests,
  childDigests,
  type DecideInput,
  type Decision,
  Enforcer,
  type EnforcerOptions,
} from "./enforcer.ts";
export {
  type ClientContext,
  type ManifestPull,
  PullService,
  type PullServiceOptions,
  type RelayedBlob,
  type RelayedListing,
} from "./pull-service.ts";
export type { PullTarget } from "./pull-target.ts";
export type { ServedManifest } from "./pull-types.ts";
export type { ReadinessOptions, ReadinessResult } from "./readiness.ts";
export { denied } from "./refusals.ts";
export { VerificationPool, type VerificationPoolOptions } from "./verification-pool.ts";
