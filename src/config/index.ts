export { type HtpasswdEntry, parseHtpasswd } from "./htpasswd.ts";
export {
  ConfigError,
  clientAuthProblems,
  configuredTrustedRootFiles,
  kmsProblem,
  type LoadConfigOptions,
  loadConfig,
  MIN_REDIS_HMAC_KEY_BYTES,
  parseConfig,
  parseListen,
  policyWarnings,
} from "./load-config.ts";
export { EMBEDDED_DEFAULT_CONFIG } from "./schema.ts";
export { Secret } from "./secret.ts";
export { watchTrustRoots } from "./trust-root-reloader.ts";
export type {
  AdminJwtConfig,
  ClientAuthConfig,
  ClientJwtConfig,
  Config,
  ListenAddress,
  TlsConfig,
  UpstreamConfig,
  UpstreamCredentials,
  UpstreamCredentialsConfig,
} from "./types.ts";
