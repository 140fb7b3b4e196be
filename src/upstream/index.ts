export { type Challenge, parseChallenges } from "./challenge.ts";
export { toUpstreamError, UpstreamError, type UpstreamErrorCode } from "./errors.ts";
export { discardBody } from "./read-body.ts";
export {
  type BlobResponse,
  type Headers,
  header,
  type ListingResponse,
  type ManifestResponse,
  pullScope,
  RegistryClient,
  type RequestContext,
  type UpstreamMetrics,
  USER_AGENT,
} from "./registry-client.ts";
export { type Route, UpstreamRouter } from "./router.ts";
export { upstreamToOciError } from "./to-oci-error.ts";
