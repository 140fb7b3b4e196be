// The names the tests know src/local's cosign signing by (the signing itself lives in src/local/: the
// legacy `.sig` layout in cosign-signing.ts, Sigstore bundles as OCI 1.1 referrers in cosign-bundle.ts).
export {
  attachBundle,
  attestLegacy,
  dsseEnvelope,
  generateSigningKey as generateTestKey,
  inTotoStatement,
  makeBundle,
  RegistryWriter,
  type SigningKey as TestKey,
  signLegacy,
  simpleSigningPayload,
} from "../../src/local/index.ts";
export {
  BUNDLE_V03_MEDIA_TYPE as BUNDLE_V03,
  SIMPLESIGNING_MEDIA_TYPE as SIMPLESIGNING,
} from "../../src/verify/index.ts";
