import type { ProjectMode } from "./schema.ts";

export type LookupErrorAction = "deny" | "allow";

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

/** A project's policy as configured (file), every option resolved against `defaults`. */
export interface ProjectConfig {
  mode: ProjectMode;
  keys: readonly TrustedKey[];
  exempt: readonly string[];
  signatureRepository: string | undefined;
  onLookupError: LookupErrorAction;
  gateHead: boolean;
  strictBlobs: boolean;
}

export interface AdminJwtConfig {
  /** Exactly one of jwksUrl / jwks (the parsed JSON Web Key Set read from jwksPath). */
  jwksUrl: string | undefined;
  jwks: unknown;
  issuer: string;
  audience: string;
}

export interface TlsConfig {
  /** Absolute paths of the PEM certificate chain and private key; watched and reloaded on change. */
  certPath: string;
  keyPath: string;
  reloadIntervalMs: number;
}

export interface Config {
  listen: ListenAddress;
  tls: TlsConfig | undefined;
  admin: { listen: ListenAddress; token: Secret | undefined; jwt: AdminJwtConfig | undefined };
  redis: { url: Secret } | undefined;
  upstreams: readonly UpstreamConfig[];
  manifests: { maxBytes: number };
  projects: Readonly<Record<string, ProjectConfig>>;
  /** The policy of every project not listed in `projects`. */
  defaults: ProjectConfig;
  cache: {
    allowTtlSeconds: number;
    denyTtlSeconds: number;
    memoryMaxEntries: number;
    manifestMaxBytes: number;
    tagTtlSeconds: number;
  };
  verification: { maxPayloadBytes: number; maxBundleBytes: number };
  shutdown: { drainTimeoutMs: number };
  log: { access: boolean };
  /** Where the config came from, for the startup log line. */
  source: string;
}
