export { ConfigError, type LoadConfigOptions, loadConfig, parseConfig, parseListen } from "./load-config.ts";
export { EMBEDDED_DEFAULT_CONFIG, type ProjectMode, projectModes } from "./schema.ts";
export { Secret } from "./secret.ts";
export type {
  Config,
  ListenAddress,
  ProjectConfig,
  TrustedKey,
  UpstreamConfig,
  UpstreamCredentials,
} from "./types.ts";
