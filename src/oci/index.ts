export { computeDigest, digestMatches } from "./digest.ts";
export {
  isOciErrorCode,
  OCI_ERROR_STATUS,
  OciError,
  type OciErrorCode,
  type OciErrorEntry,
} from "./errors.ts";
export { ALL_MANIFEST_TYPES, isValidMediaType, MediaType } from "./media-types.ts";
export {
  type Digest,
  type DigestAlgorithm,
  digestAlgorithm,
  type ImageReference,
  isDigest,
  isValidName,
  isValidTag,
  MAX_NAME_LENGTH,
  parseDigest,
  parseImageReference,
  parseName,
  parseReference,
  parseTag,
  type Reference,
  referenceToString,
} from "./reference.ts";
