// Public surface of local/: what `pullgate demo`, the integration tests and the benchmarks use to run
// pullgate's neighbours on this machine (docker-registry, redis-server) and fill them (images, cosign
// signatures). Not part of the proxy itself.
export {
  findOnPath,
  killLiveProcesses,
  type ManagedProcess,
  type RestartableProcess,
  type RunOptions,
  type RunResult,
  run,
  runOk,
  type StartProcessOptions,
  startProcess,
  waitFor,
} from "./child-process.ts";
export { attestLegacy, dsseEnvelope, inTotoStatement, preAuthEncoding } from "./cosign-attestation.ts";
export {
  attachBundle,
  bundleEvidence,
  bundleReferrerManifest,
  makeBundle,
  referrersIndexWith,
} from "./cosign-bundle.ts";
export {
  createLegacySignature,
  generateSigningKey,
  type LegacySignature,
  type LegacySignatureOptions,
  legacySignatureConfig,
  legacySignatureEvidence,
  legacySignatureLayer,
  legacySignatureManifest,
  type SignatureLayer,
  type SigningKey,
  signatureLayersOf,
  signLegacy,
  simpleSigningPayload,
} from "./cosign-signing.ts";
export {
  type DockerRegistry,
  type DockerRegistryOptions,
  REGISTRY_PROBE_USER_AGENT,
  startDockerRegistry,
} from "./docker-registry.ts";
export { freePort, isPortFree, isPortOpen, listensOn } from "./ports.ts";
export {
  type RedisServer,
  type RedisServerOptions,
  type RedisServerTls,
  startRedisServer,
} from "./redis-server.ts";
export { pushArtifact, RegistryWriter, type RegistryWriterOptions } from "./registry-push.ts";
export { createTar, type TarContent } from "./tar.ts";
export {
  type Blob,
  type BuiltArtifact,
  createTinyImage,
  type Descriptor,
  ociImageManifest,
  type TinyImage,
} from "./tiny-image.ts";
export { ensureTools, type RequiredTool, skopeoEnv } from "./tools.ts";
