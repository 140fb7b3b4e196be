export { computeDigest, digestMatches } from "./digest.ts";
export {
  isOciErrorCode,
  OCI_ERROR_STATUS,
  OciError,
  type OciErrorCode,
  type OciErrorEntry,
} from "./errors.ts";
export {
  type Descriptor,
  foldedKeyProblem,
  goFoldAscii,
  isImageManifestMediaType,
  isIndexMediaType,
  type Manifest,
  type ManifestReading,
  mediaTypeEssence,
  readManifest,
} from "./manifest.ts";
export { ALL_MANIFEST_TYPES, EMPTY_JSON_DIGEST, isValidMediaType, MediaType } from "./media-types.ts";
export {
  DIGEST_RE,
  type Digest,
  type DigestAlgorithm,
  digestAlgorithm,
  type ImageReference,
  isDigest,
  isValidName,
  isValidTag,
  MAX_NAME_LENGTH,
  NAME_COMPONENT_RE,
  NAME_RE,
  parseDigest,
  parseImageReference,
  parseName,
  parseReference,
  parseTag,
  type Reference,
  referenceToString,
} from "./reference.ts";
export { API_VERSION_HEADER, renderError, toOciError } from "./render-error.ts";
export { type JsonObject, type JsonValue, parseStrictJson, type StrictJsonResult } from "./strict-json.ts";
