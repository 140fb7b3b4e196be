export {
  blobDigests,
  childDigests,
  type DecideInput,
  type Decision,
  Enforcer,
  type EnforcerOptions,
} from "./enforcer.ts";
export {
  type ManifestRequest,
  PullService,
  type PullServiceOptions,
  rewriteTagsLink,
  type ServedManifest,
} from "./pull-service.ts";
export { type LookupLimits, lookupSignatures, type SignatureLookup } from "./signature-lookup.ts";
export { SingleFlight } from "./single-flight.ts";
