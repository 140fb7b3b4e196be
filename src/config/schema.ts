import { z } from "zod";
import { NAME_COMPONENT_RE, NAME_RE } from "../oci/index.ts";
import { fileDefaultsSchema, fileProjectSchema, UPSTREAM_NAME_RE } from "../policy/index.ts";

/**
 * The shape of pullgate.yaml as written by people. Parsing it gives a RawConfig; load-config.ts then
 * resolves files, env and cross-field rules into the frozen Config. Every default lives here.
 */

export const DEFAULT_LISTEN = "127.0.0.1:5050";
export const DEFAULT_ADMIN_LISTEN = "127.0.0.1:5051";
export const DEFAULT_MANIFEST_MAX_BYTES = 4 * 1024 * 1024;

const listen = z.string().min(1);
const positiveMs = z.number().int().positive();

/** A credential helper's name: the program is `docker-credential-<name>` on PATH (a name, never a path). */
export const CREDENTIAL_HELPER_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** A helper run longer than this is killed. */
export const DEFAULT_CREDENTIAL_HELPER_TIMEOUT_MS = 10_000;
/** Helpers do not say how long their answer lasts (ECR: 12 h, Google access tokens: 1 h): run again after 15 min. */
export const DEFAULT_CREDENTIAL_HELPER_CACHE_SECONDS = 900;

const PASSWORD_FORM_KEYS = ["username", "usernameEnv", "password", "passwordEnv", "passwordFile"] as const;
const HELPER_ONLY_KEYS = ["serverUrl", "timeoutMs", "cacheSeconds"] as const;

/** pullgate's login to an upstream: a username and one password form, or a Docker credential helper. */
const credentials = z
  .strictObject({
    username: z.string().min(1).optional(),
    usernameEnv: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
    passwordEnv: z.string().min(1).optional(),
    /** Read when first needed, then again whenever the file changes (a rotated Kubernetes Secret) or on a 401. */
    passwordFile: z.string().min(1).optional(),
    /** `docker-credential-<helper> get` (on PATH) gives the username and password. */
    helper: z
      .string()
      .regex(
        CREDENTIAL_HELPER_NAME_RE,
        "a credential helper name like ecr-login or gcr (the program is docker-credential-<name> on PATH)",
      )
      .optional(),
    /** What the helper is asked for (default: the upstream URL's host[:port]; Docker Hub: https://index.docker.io/v1/). */
    serverUrl: z.string().min(1).max(1024).optional(),
    /** A helper run that takes longer is killed and the request fails. */
    timeoutMs: z.number().int().min(100).max(120_000).optional(),
    /** A helper's answer is used this long, then the helper runs again (sooner after an upstream 401). */
    cacheSeconds: z.number().int().min(1).max(86_400).optional(),
  })
  .superRefine((c, ctx) => {
    const problem = (message: string) => ctx.addIssue({ code: "custom", message });
    if (c.helper !== undefined) {
      const extra = PASSWORD_FORM_KEYS.filter((k) => c[k] !== undefined);
      if (extra.length > 0)
        problem(`give either helper or username/password, not both (remove ${extra.join(", ")})`);
      return;
    }
    if ((c.username === undefined) === (c.usernameEnv === undefined))
      problem("give exactly one of username or usernameEnv (or a helper instead)");
    if ([c.password, c.passwordEnv, c.passwordFile].filter((v) => v !== undefined).length !== 1)
      problem("give exactly one of password, passwordEnv or passwordFile");
    const helperOnly = HELPER_ONLY_KEYS.filter((k) => c[k] !== undefined);
    if (helperOnly.length > 0) problem(`${helperOnly.join(", ")}: only with helper`);
  });

const upstream = z.strictObject({
  name: z.string().regex(UPSTREAM_NAME_RE, "letters, digits, '.', '_' or '-'"),
  url: z.string().min(1),
  registry: z.string().min(1).optional(),
  pathPrefix: z.string().regex(NAME_RE, "must be a repository path like 'hub' or 'mirrors/hub'").optional(),
  default: z.boolean().default(false),
  credentials: credentials.optional(),
  /** follow: pullgate fetches redirected blobs itself; pass: the client gets the 307. */
  redirects: z.enum(["follow", "pass"]).default("follow"),
  /** Keep-alive connections for streamed blobs (clients' layer downloads). */
  connections: z.number().int().min(1).max(1024).default(64),
  /** Two pools of this size apart from the blobs': clients' manifests and tokens; signature lookups. */
  apiConnections: z.number().int().min(1).max(1024).default(32),
  /** Origins (scheme://host[:port]) blob redirects may go to besides public addresses: e.g. an internal object store. */
  redirectOrigins: z.array(z.string().min(1)).max(100).default([]),
  /** Token realm origins besides the upstream's own (docker.io upstreams: https://auth.docker.io by default). */
  tokenRealms: z.array(z.string().min(1)).max(100).optional(),
  timeouts: z
    .strictObject({
      connectMs: positiveMs.default(5_000),
      headersMs: positiveMs.default(30_000),
      bodyIdleMs: positiveMs.default(30_000),
      /** Whole exchange (headers and body) of a manifest, listing, token or signature blob. */
      totalMs: positiveMs.default(60_000),
      /** Whole transfer of one streamed blob. */
      blobTotalMs: positiveMs.default(3_600_000),
    })
    .prefault({}),
});

/** Alert webhooks: names, kinds of event and the bounds of each one's queue and delivery (README "Alerts"). */
export const ALERT_EVENT_NAMES = ["deny", "would-deny", "unavailable"] as const;
/** A header an alert webhook's request carries, its value from the environment (a token). */
const ALERT_HEADER_NAME_RE = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/;

const alertWebhook = z
  .strictObject({
    /** Used in logs and in the payload (the URL never is: it may carry a secret). */
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, "letters, digits, '.', '_' or '-'"),
    url: z.string().min(1).max(2048).optional(),
    /** The URL from an environment variable (Slack's incoming-webhook URLs are secrets). */
    urlEnv: z.string().min(1).optional(),
    /** json: pullgate's payload; slack: a Slack incoming-webhook message ({text, blocks}). */
    format: z.enum(["json", "slack"]).default("json"),
    /** http:// to a host that is not a loopback address (plain HTTP to 127.0.0.1/::1/localhost is always accepted). */
    allowHttp: z.boolean().default(false),
    /** Header name → environment variable holding its value, e.g. { Authorization: ALERT_TOKEN }. */
    headersEnv: z
      .record(z.string().regex(ALERT_HEADER_NAME_RE, "an HTTP header name"), z.string().min(1))
      .default({}),
    /** Only these projects' decisions (names); every project when absent. */
    projects: z.array(z.string().regex(NAME_COMPONENT_RE, "a project name")).min(1).max(1000).optional(),
    /** Which events this webhook gets. */
    events: z
      .array(z.enum(ALERT_EVENT_NAMES))
      .min(1)
      .refine((e) => new Set(e).size === e.length, "each event once")
      .default([...ALERT_EVENT_NAMES]),
    /** Events are collected this long after the first one before a message goes out. */
    batchSeconds: z.number().min(0).max(3600).default(10),
    /** At least this long between two messages to this webhook. */
    minIntervalSeconds: z.number().min(0).max(86_400).default(30),
    /** Alerts (distinct project, repository, digest, reason) in one message; more wait for the next. */
    maxBatchSize: z.number().int().min(1).max(100).default(20),
    /** Alerts waiting at most; past it the oldest is dropped (and counted in the next message). */
    queueSize: z.number().int().min(1).max(100_000).default(1_000),
    /** Each delivery attempt (connect, send, answer). */
    timeoutMs: positiveMs.max(120_000).default(5_000),
    /** A message still undelivered this long after its first attempt is given up (logged). */
    giveUpSeconds: z.number().min(1).max(86_400).default(600),
  })
  .refine((w) => (w.url === undefined) !== (w.urlEnv === undefined), {
    message: "give exactly one of url or urlEnv",
  });

export const rawConfigSchema = z.strictObject({
  listen: listen.default(DEFAULT_LISTEN),
  /** Serve the proxy over HTTPS with this certificate and key (PEM files, reloaded when they change). */
  tls: z
    .strictObject({
      cert: z.string().min(1),
      key: z.string().min(1),
      /** How often the files are checked for a renewed certificate. */
      reloadIntervalMs: z.number().int().min(100).default(2_000),
    })
    .optional(),
  admin: z
    .strictObject({
      listen: listen.default(DEFAULT_ADMIN_LISTEN),
      token: z.string().min(1).optional(),
      /** Optional: also accept JWTs (Authorization: Bearer) verified against a JWKS. */
      jwt: z
        .strictObject({
          jwksUrl: z.string().url().optional(),
          jwksPath: z.string().min(1).optional(),
          issuer: z.string().min(1),
          audience: z.string().min(1),
          /** The claim listing the token's roles: read, write, write:<project>. */
          rolesClaim: z.string().min(1).default("pullgate_roles"),
          /** exp and iat are required, and exp − iat may not exceed this. */
          maxLifetimeSeconds: z.number().int().positive().default(3600),
        })
        .refine((j) => (j.jwksUrl === undefined) !== (j.jwksPath === undefined), {
          message: "give exactly one of jwksUrl or jwksPath",
        })
        .optional(),
    })
    .prefault({}),
  redis: z
    .strictObject({
      /** One Redis server. */
      url: z.string().min(1).optional(),
      /** The URL from an environment variable (it may carry a password: keep it out of ConfigMaps). */
      urlEnv: z.string().min(1).optional(),
      /** Redis Cluster: some of its nodes' URLs (the others are discovered). */
      cluster: z.array(z.string().min(1)).min(1).optional(),
      /** Sentinel: the sentinels' URLs (a password in them is the sentinels' own)… */
      sentinels: z.array(z.string().min(1)).min(1).optional(),
      /** …and the name of the master they watch. */
      name: z.string().min(1).optional(),
      /** cluster/sentinels: the Redis nodes' password from an environment variable (instead of in the URLs). */
      passwordEnv: z.string().min(1).optional(),
      /** The key (>= 32 bytes, shared by the replicas) that authenticates everything stored in Redis: an env var… */
      hmacKeyEnv: z.string().min(1).optional(),
      /** …or a file (relative to the config file; surrounding whitespace is ignored). */
      hmacKeyFile: z.string().min(1).optional(),
      /**
       * rediss:// only: the CA certificate(s) (PEM file, relative to the config file) trusted for the Redis
       * servers and sentinels, instead of the system's CAs.
       */
      caFile: z.string().min(1).optional(),
    })
    .refine((r) => [r.url, r.urlEnv, r.cluster, r.sentinels].filter((v) => v !== undefined).length === 1, {
      message: "give exactly one of url, urlEnv, cluster or sentinels",
    })
    .refine((r) => (r.sentinels === undefined) === (r.name === undefined), {
      message: "name (the master's name) goes with sentinels, and only with them",
    })
    .refine((r) => r.passwordEnv === undefined || r.cluster !== undefined || r.sentinels !== undefined, {
      message: "passwordEnv goes with cluster or sentinels (a url carries its own password)",
    })
    .refine((r) => (r.hmacKeyEnv === undefined) !== (r.hmacKeyFile === undefined), {
      message:
        "give exactly one of hmacKeyEnv or hmacKeyFile: the key (at least 32 bytes, the same on every replica) that authenticates what pullgate stores in Redis",
    })
    .optional(),
  /** Who may use the proxy (see README "Client authentication"). */
  clientAuth: z
    .strictObject({
      /** true: no client authentication, said explicitly (anyone who reaches the proxy pulls with pullgate's logins). */
      open: z.boolean().default(false),
      realm: z
        .string()
        .regex(/^[\x20-\x7e]{1,100}$/, "printable ASCII")
        .refine((r) => !/["\\]/.test(r), "no quotes or backslashes")
        .default("pullgate"),
      /** htpasswd file with bcrypt entries (`htpasswd -B`), relative to the config file. */
      htpasswd: z.string().min(1).optional(),
      /** Bearer JWTs (or a JWT as the Basic password) verified against a JWKS. */
      jwt: z
        .strictObject({
          jwksUrl: z.string().url().optional(),
          jwksPath: z.string().min(1).optional(),
          jwksTimeoutMs: positiveMs.default(5_000),
          issuer: z.string().min(1),
          audience: z.string().min(1),
          subjectClaim: z.string().min(1).default("sub"),
          maxLifetimeSeconds: z.number().int().positive().default(86_400),
        })
        .refine((j) => (j.jwksUrl === undefined) !== (j.jwksPath === undefined), {
          message: "give exactly one of jwksUrl or jwksPath",
        })
        .optional(),
    })
    .prefault({}),
  upstreams: z.array(upstream).min(1, "at least one upstream is needed"),
  manifests: z
    .strictObject({
      maxBytes: z
        .number()
        .int()
        .min(1024)
        .max(64 * 1024 * 1024)
        .default(DEFAULT_MANIFEST_MAX_BYTES),
    })
    .prefault({}),
  /** Sigstore trusted roots by name (`public-good` is built in), for keys' log entries and keyless signers. */
  trustedRoots: z
    .record(
      z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, "a name like 'corp'"),
      z.strictObject({ path: z.string().min(1) }),
    )
    .default({}),
  projects: z
    .record(
      z.string().regex(NAME_COMPONENT_RE, "project names follow the repository name grammar"),
      fileProjectSchema,
    )
    .default({}),
  /** Every project option (policy/project-options.ts), for the projects not listed in `projects`. */
  defaults: fileDefaultsSchema.prefault({}),
  cache: z
    .strictObject({
      allowTtlSeconds: z.number().int().positive().default(86_400),
      denyTtlSeconds: z.number().int().positive().default(60),
      memoryMaxEntries: z.number().int().min(100).default(100_000),
      /** Manifests by digest kept in process (0 disables): repeat GETs by digest skip the upstream. */
      manifestMaxBytes: z
        .number()
        .int()
        .min(0)
        .default(64 * 1024 * 1024),
      /** Tags are asked upstream on every pull (0, the default); > 0 remembers tag → digest this long. */
      tagTtlSeconds: z.number().int().min(0).max(3600).default(0),
    })
    .prefault({}),
  /** Keys held in a cloud KMS (`kms:` on a key): how they are fetched and kept fresh. */
  kms: z
    .strictObject({
      /** Each fetch of a public key. */
      timeoutMs: positiveMs.max(120_000).default(10_000),
      /** Keys are fetched at start and again this often (a failed fetch keeps the last good key). */
      refreshSeconds: z.number().int().min(60).max(86_400).default(3_600),
      /** A CA (PEM file, relative to the config) for `awskms://ENDPOINT/…` endpoints with a private CA. */
      awsEndpointCaFile: z.string().min(1).optional(),
      /** Cloud KMS at another endpoint (Private Service Connect): `https://host[:port]` (`http://` for a local test server). */
      gcpEndpoint: z.url({ protocol: /^https?$/ }).optional(),
    })
    .prefault({}),
  verification: z
    .strictObject({
      /** Cap on a legacy simplesigning payload blob (cosign's are a few hundred bytes). */
      maxPayloadBytes: z
        .number()
        .int()
        .min(1024)
        .default(64 * 1024),
      /** Cap on a Sigstore bundle blob (and a DSSE envelope layer of a legacy `.att`). */
      maxBundleBytes: z
        .number()
        .int()
        .min(1024)
        .default(4 * 1024 * 1024),
      /** Distinct blobs one signature lookup (or signature-artifact proof) may fetch. */
      maxLookupBlobs: z.number().int().min(1).max(4096).default(64),
      /** Bytes one signature lookup may hold, summed over its distinct blobs. */
      maxLookupBytes: z
        .number()
        .int()
        .min(64 * 1024)
        .default(8 * 1024 * 1024),
      /** Total deadline of one (shared) signature lookup; joiners past it get SIGNATURE_UNAVAILABLE. */
      lookupTimeoutMs: positiveMs.default(30_000),
      /** Signature lookups in flight at once (distinct digests); more wait within their deadline. */
      maxConcurrentLookups: z.number().int().min(1).max(1024).default(32),
    })
    .prefault({}),
  /** Bounds per client connection and per client address (slow or greedy clients must not starve others). */
  limits: z
    .strictObject({
      /** Blob downloads in flight per client address; more get 429 TOOMANYREQUESTS. */
      blobStreamsPerClient: z.number().int().min(1).max(10_000).default(16),
      /** A client connection with no progress (a reader that stopped reading) is closed after this long. */
      clientIdleMs: positiveMs.default(30_000),
    })
    .prefault({}),
  /** Webhooks told of denials, would-denials (audit mode) and bursts of SIGNATURE_UNAVAILABLE (README "Alerts"). */
  alerts: z
    .strictObject({
      webhooks: z.array(alertWebhook).max(32).default([]),
      /** An `unavailable` alert: at least `threshold` SIGNATURE_UNAVAILABLE decisions of one (project, upstream) within `windowSeconds`. */
      unavailable: z
        .strictObject({
          threshold: z.number().int().min(1).max(100_000).default(5),
          windowSeconds: z.number().int().min(1).max(86_400).default(60),
        })
        .prefault({}),
      /** On shutdown, what is still queued is sent once, for at most this long. */
      shutdownFlushMs: z.number().int().min(0).max(60_000).default(5_000),
    })
    .prefault({}),
  shutdown: z.strictObject({ drainTimeoutMs: positiveMs.default(10_000) }).prefault({}),
  log: z
    .strictObject({
      /** One `access` line per request. */
      access: z.boolean().default(true),
      /** Lines below this level are not written (audit records always are). */
      level: z.enum(["debug", "info", "warn", "error"]).default("info"),
      /** json: one JSON object per line; text: `time LEVEL event key=value …`. */
      format: z.enum(["json", "text"]).default("json"),
      /** The audit stream (docs/audit.schema.json): stdout with the log, or appended to a file. */
      audit: z
        .strictObject({
          to: z.enum(["stdout", "file"]).default("stdout"),
          /** With `to: file` (relative to the config file's directory). */
          path: z.string().min(1).optional(),
        })
        .prefault({}),
    })
    .prefault({}),
});

export type RawConfig = z.infer<typeof rawConfigSchema>;

/** The configuration pullgate runs on when given none: Docker Hub, in-memory cache, every project off. */
export const EMBEDDED_DEFAULT_CONFIG = `
listen: "${DEFAULT_LISTEN}"
admin:
  listen: "${DEFAULT_ADMIN_LISTEN}"
upstreams:
  - name: hub
    url: "https://registry-1.docker.io"
    registry: "docker.io"
    default: true
defaults:
  mode: "off"
`;
