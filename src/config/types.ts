import type { ProjectMode } from "./schema.ts";
import type { Secret } from "./secret.ts";

export interface ListenAddress {
  host: string;
  port: number;
}

export interface UpstreamCredentials {
  username: string;
  password: Secret;
}

export interface UpstreamConfig {
  name: string;
  /** Origin only: scheme://host[:port], no path. */
  url: string;
  /** Registry host this upstream stands for (containerd's ?ns=); defaults to the URL's host. */
  registry: string;
  pathPrefix: string | undefined;
  default: boolean;
  credentials: UpstreamCredentials | undefined;
  redirects: "follow" | "pass";
  connections: number;
  timeouts: { connectMs: number; headersMs: number; bodyIdleMs: number };
}

export interface TrustedKey {
  name: string;
  pem: string;
}

export interface ProjectConfig {
  mode: ProjectMode;
  keys: readonly TrustedKey[];
}

export interface Config {
  listen: ListenAddress;
  admin: { listen: ListenAddress; token: Secret | undefined };
  redis: { url: Secret } | undefined;
  upstreams: readonly UpstreamConfig[];
  manifests: { maxBytes: number };
  projects: Readonly<Record<string, ProjectConfig>>;
  defaults: { mode: ProjectMode };
  shutdown: { drainTimeoutMs: number };
  log: { access: boolean };
  /** Where the config came from, for the startup log line. */
  source: string;
}
