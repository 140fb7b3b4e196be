import type { ProjectOptions } from "../policy/index.ts";
import type { TrustRoot } from "../verify/index.ts";
import type { HtpasswdEntry } from "./htpasswd.ts";
import type { Secret } from "./secret.ts";

export interface ListenAddress {
  host: string;
  port: number;
}

/** A login as sent to an upstream (Basic, or to its token service). */
export interface UpstreamCredentials {
  username: string;
  password: Secret;
}

/**
 * Where pullgate's login to an upstream comes from. Only `password` is fixed at load; the others are
 * read when needed (src/upstream/credential-source.ts): a password file again whenever it changes or
 * after a 401, a credential helper again when its answer is `cacheSeconds` old or after a 401.
 */
export type UpstreamCredentialsConfig =
  /** `password` or `passwordEnv`, resolved at load. */
  | { kind: "password"; username: string; password: Secret }
  /** `passwordFile`: an absolute path, checked readable at load. */
  | { kind: "passwordFile"; username: string; passwordFile: string }
  /** `docker-credential-<helper> get` (found on PATH), asked about `serverUrl`. */
  | { kind: "helper"; helper: string; serverUrl: string; timeoutMs: number; cacheSeconds: number };

export interface UpstreamConfig {
  name: string;
  /** Origin only: scheme://host[:port], no path. */
  url: string;
  /** Registry host this upstream stands for (containerd's ?ns=); defaults to the URL's host. */
  registry: string;
  pathPrefix: string | undefined;
  default: boolean;
  credentials: UpstreamCredentialsConfig | undefined;
  redirects: "follow" | "pass";
  connections: number;
  apiConnections: number;
  /** Origins blob redirects may go to even when they are internal addresses (public ones always may). */
  redirectOrigins: readonly string[];
  /** Origins whose token realms pullgate may fetch, besides the upstream's own origin. */
  tokenRealms: readonly string[];
  timeouts: {
    connectMs: number;
    headersMs: number;
    bodyIdleMs: number;
    totalMs: number;
    blobTotalMs: number;
  };
}

export interface AdminJwtConfig {
  /** Exactly one of jwksUrl / jwks (the parsed JSON Web Key Set read from jwksPath). */
  jwksUrl: string | undefined;
  jwks: unknown;
  issuer: string;
  audience: string;
  /** The claim listing the token's admin roles (read, write, write:<project>). */
  rolesClaim: string;
  /** exp − iat may not exceed this (both are required). */
  maxLifetimeSeconds: number;
}

/** Bearer JWTs from clients (e.g. Kubernetes service-account tokens), verified against a JWKS. */
export interface ClientJwtConfig {
  /** Exactly one of jwksUrl / jwks (the parsed JSON Web Key Set read from jwksPath). */
  jwksUrl: string | undefined;
  jwks: unknown;
  jwksTimeoutMs: number;
  issuer: string;
  audience: string;
  /** The claim that names the principal (default `sub`). */
  subjectClaim: string;
  /** exp − iat may not exceed this. */
  maxLifetimeSeconds: number;
}

/** Who may use the proxy: htpasswd users and/or JWT subjects; with neither, anyone (see `open`). */
export interface ClientAuthConfig {
  /** Explicitly accepted: anyone who reaches the proxy pulls with pullgate's upstream logins. */
  open: boolean;
  realm: string;
  htpasswd: { path: string; entries: readonly HtpasswdEntry[] } | undefined;
  jwt: ClientJwtConfig | undefined;
}

export interface TlsConfig {
  /** Absolute paths of the PEM certificate chain and private key; watched and reloaded on change. */
  certPath: string;
  keyPath: string;
  reloadIntervalMs: number;
}

/**
 * Where Redis is: one server (`url`), a Redis Cluster (seed nodes; the rest is discovered) or a master found
 * through Sentinel (`name`). Every URL is a Secret (it may carry a password); `rediss://` means TLS.
 */
export type RedisTopology =
  | { kind: "standalone"; url: Secret }
  | { kind: "cluster"; nodes: readonly Secret[]; password: Secret | undefined }
  | {
      kind: "sentinel";
      sentinels: readonly Secret[];
      name: string;
      /** The master's and replicas' password (the sentinels' own comes from their URLs). */
      password: Secret | undefined;
    };

export interface RedisConfig {
  /**
   * standalone: the URL. cluster/sentinel: "redis+cluster:" / "redis+sentinel:", which createRedisConnection
   * refuses (connect with `topology`).
   */
  url: Secret;
  topology: RedisTopology;
  hmacKey: Secret;
  /**
   * PEM text of `redis.caFile`: with rediss://, the only CAs trusted for the servers and sentinels (undefined:
   * Node's default CAs).
   */
  ca: string | undefined;
}

export type AlertEventName = "deny" | "would-deny" | "unavailable";

/** One alert webhook (README "Alerts"); its URL and header values are secrets, never logged. */
export interface AlertWebhookConfig {
  name: string;
  url: Secret;
  format: "json" | "slack";
  /** Header name → value (from `headersEnv`). */
  headers: Readonly<Record<string, Secret>>;
  /** Only these projects' alerts; undefined: every project. */
  projects: readonly string[] | undefined;
  events: readonly AlertEventName[];
  batchMs: number;
  minIntervalMs: number;
  maxBatchSize: number;
  queueSize: number;
  timeoutMs: number;
  giveUpMs: number;
}

export interface AlertsConfig {
  /** Empty: no alerts (nothing is registered). */
  webhooks: readonly AlertWebhookConfig[];
  unavailable: { threshold: number; windowMs: number };
  shutdownFlushMs: number;
}

export interface Config {
  listen: ListenAddress;
  tls: TlsConfig | undefined;
  admin: { listen: ListenAddress; token: Secret | undefined; jwt: AdminJwtConfig | undefined };
  /** hmacKey (>= 32 bytes, shared by the replicas) authenticates every entry pullgate stores in Redis. */
  redis: RedisConfig | undefined;
  clientAuth: ClientAuthConfig;
  upstreams: readonly UpstreamConfig[];
  manifests: { maxBytes: number };
  /** Sigstore trusted roots by name: `public-good` (built in) and `trustedRoots` from the file. */
  trustedRoots: ReadonlyMap<string, TrustRoot>;
  /** The files of the configured roots (absolute paths), re-read when they change; not the built-in one. */
  trustedRootPaths: ReadonlyMap<string, string>;
  /** Each project's policy options (policy/project-options.ts), resolved against `defaults`, keys parsed. */
  projects: Readonly<Record<string, ProjectOptions>>;
  /** The policy of every project not listed in `projects` (its `upstreams` is always ["*"]). */
  defaults: ProjectOptions;
  cache: {
    allowTtlSeconds: number;
    denyTtlSeconds: number;
    memoryMaxEntries: number;
    manifestMaxBytes: number;
    tagTtlSeconds: number;
  };
  /** Why a KMS reference cannot be used (kms/'s parser), for keys set through the admin API. */
  kmsProblem: (reference: string) => string | undefined;
  kms: {
    timeoutMs: number;
    refreshSeconds: number;
    /** PEM text of awsEndpointCaFile. */
    awsEndpointCa: string | undefined;
    gcpEndpoint: string | undefined;
  };
  verification: {
    maxPayloadBytes: number;
    maxBundleBytes: number;
    maxLookupBlobs: number;
    maxLookupBytes: number;
    lookupTimeoutMs: number;
    maxConcurrentLookups: number;
  };
  limits: { blobStreamsPerClient: number; clientIdleMs: number };
  alerts: AlertsConfig;
  shutdown: { drainTimeoutMs: number };
  log: {
    access: boolean;
    level: "debug" | "info" | "warn" | "error";
    format: "json" | "text";
    /** Where audit records go: stdout (with the log), or appended to `path` (absolute). */
    audit: { to: "stdout" } | { to: "file"; path: string };
  };
  /** Where the config came from, for the startup log line. */
  source: string;
}
