import type { Hono } from "hono";
import type { Dispatcher } from "undici";
import { createAdminApp, createAdminAuthenticator } from "./admin/index.ts";
import { createAlerts } from "./alerts/index.ts";
import {
  createManifestCache,
  createMemoryVerdictCache,
  createTieredVerdictCache,
  type VerdictCache,
} from "./cache/index.ts";
import {
  type Config,
  ConfigError,
  clientAuthProblems,
  type UpstreamConfig,
  watchTrustRoots,
} from "./config/index.ts";
import {
  type ClientAuthenticator,
  type ClientAuthOptions,
  createClientAuthenticator,
  createProxyApp,
  createPullPermissions,
  type ProxyEnv,
  type PullPermissions,
} from "./http/index.ts";
import { createKmsProviders, KmsKeyring } from "./kms/index.ts";
import { createMemoryPolicyStore, PolicyRegistry, type PolicyStore } from "./policy/index.ts";
import { Enforcer, PullService, type ReadinessOptions, VerificationPool } from "./pull/index.ts";
import {
  createRedisConnection,
  createRedisEntryMac,
  createRedisPolicyStore,
  createRedisVerdictCache,
  type RedisConnection,
} from "./redis/index.ts";
import {
  type AuditLog,
  type AuditSink,
  createAuditFile,
  createAuditLog,
  createLogger,
  createPullgateMetrics,
  createTracer,
  type Logger,
  type PullgateMetrics,
  RecentDecisions,
  type Tracer,
} from "./telemetry/index.ts";
import { RegistryClient, UpstreamRouter } from "./upstream/index.ts";

export interface Deps {
  config: Config;
  logger: Logger;
  tracer: Tracer;
  audit: AuditLog;
  /** The latest manifest decisions of this process (an audit sink; the admin console lists them). */
  decisions: RecentDecisions;
  cache: VerdictCache;
  policies: PolicyRegistry;
  enforcer: Enforcer;
  pull: PullService;
  /** Every metric, declared in telemetry/pullgate-metrics.ts (GET /metrics renders it). */
  metrics: PullgateMetrics;
  /** Client authentication and per-project pull lists; undefined when clients are not authenticated. */
  clientAuth: { authenticator: ClientAuthenticator; permissions: PullPermissions } | undefined;
  /** draining: stop was asked; proxyHosts: host:port names of the proxy listener (set once it listens). */
  state: { draining: boolean; proxyHosts: readonly string[] };
  /** Releases pools, Redis connections and subscriptions. */
  close(): Promise<void>;
}

export interface DepsOverrides {
  logger?: Logger;
  tracer?: Tracer;
  /** Unit tests give upstreams an undici MockAgent. */
  dispatcherFor?: (upstream: UpstreamConfig) => Dispatcher;
  /** Unit tests: limits and the bcrypt comparison of client authentication. */
  clientAuth?: ClientAuthOptions;
  /** Unit tests: the readiness check's clock and cache. */
  readiness?: ReadinessOptions;
  /** How often configured trusted-root files are checked for changes (default 2 s). */
  trustRootReloadIntervalMs?: number;
  /** How often runtime policies and the cache deletion log are read again from Redis, whatever pub/sub said (default 30 s). */
  redisReconcileMs?: number;
}

/**
 * The KMS keyring, tracking every `kms:` key of the config file (the admin API's are tracked when a
 * policy first names them). Neither cloud SDK is loaded unless a reference of its kind is fetched.
 */
function createKmsKeyring(config: Config, logger: Logger) {
  const gcp = config.kms.gcpEndpoint === undefined ? undefined : new URL(config.kms.gcpEndpoint);
  const providers = createKmsProviders({
    aws: {
      timeoutMs: config.kms.timeoutMs,
      ...(config.kms.awsEndpointCa ? { endpointCa: config.kms.awsEndpointCa } : {}),
    },
    gcp: {
      timeoutMs: config.kms.timeoutMs,
      ...(gcp
        ? {
            apiEndpoint: gcp.hostname,
            port: Number(gcp.port || (gcp.protocol === "http:" ? 80 : 443)),
            protocol: gcp.protocol === "http:" ? ("http" as const) : ("https" as const),
          }
        : {}),
    },
  });
  const keyring = new KmsKeyring({
    fetchPublicKey: providers.fetchPublicKey,
    logger,
    timeoutMs: config.kms.timeoutMs,
    refreshMs: config.kms.refreshSeconds * 1000,
  });
  for (const options of [config.defaults, ...Object.values(config.projects)])
    for (const key of options.keys) if (key.kms !== undefined) keyring.track(key.kms);
  return { keyring, providers };
}

/**
 * Builds every dependency once from the config; nothing is a module-level singleton. (Keys were
 * parsed by verify/ when the config was loaded, and unacceptable ones reported there.)
 */
export async function createDeps(config: Config, overrides: DepsOverrides = {}): Promise<Deps> {
  // Upstream credentials without client authentication: refused unless clientAuth.open says so.
  const exposure = clientAuthProblems(config);
  if (exposure.length > 0) throw new ConfigError(config.source, exposure);
  const logger = overrides.logger ?? createLogger({ level: config.log.level, format: config.log.format });
  const authenticator = createClientAuthenticator(config.clientAuth, { logger }, overrides.clientAuth);
  const clientAuth = authenticator
    ? { authenticator, permissions: createPullPermissions(config) }
    : undefined;
  const tracer = overrides.tracer ?? createTracer();
  const metrics = createPullgateMetrics();
  // Everyone who hears of each decision and admin change besides the log.
  const decisions = new RecentDecisions({ capacity: 1_000 });
  const auditSinks: AuditSink[] = [decisions];
  const alerts = createAlerts(config.alerts, {
    logger,
    // Decided when a decision is made, by then `policies` exists: a project of the config or a runtime override.
    knownProject: (project) => policies.forProject(project).source !== "defaults",
  });
  if (alerts) auditSinks.push(alerts.sink);
  // log.audit.to: file — appended to, reopened on SIGHUP (and when rotated, checked once a second).
  const auditFile =
    config.log.audit.to === "file" ? createAuditFile({ path: config.log.audit.path, logger }) : undefined;
  const reopenAuditFile = () => auditFile?.reopen();
  if (auditFile) process.on("SIGHUP", reopenAuditFile);
  const audit = createAuditLog(logger, auditSinks, { output: auditFile });
  const router = new UpstreamRouter(
    config.upstreams.map((u) => {
      const dispatcher = overrides.dispatcherFor?.(u);
      return new RegistryClient(u, dispatcher ? { tracer, dispatcher, metrics } : { tracer, metrics });
    }),
  );
  const { memory, cache, store, connections } = createStores(
    config,
    logger,
    metrics,
    overrides.redisReconcileMs,
  );
  const kms = createKmsKeyring(config, logger);
  const policies = new PolicyRegistry(config, {
    store,
    logger,
    kmsKey: (reference) => kms.keyring.get(reference) ?? kms.keyring.track(reference),
  });
  // KMS keys are fetched before the first pull is judged (bounded by kms.timeoutMs); a key that
  // could not be fetched makes its project answer 503 until it is.
  await kms.keyring.start();
  const stopWatchingKms = kms.keyring.onChange(() => policies.invalidate());
  // Runtime policy changes live in Redis: give it a moment at startup so a new replica does not
  // start on the file config while a stricter runtime policy is in force (bounded; the store's
  // subscription reloads as soon as Redis is back if it is down now).
  if (connections.length > 0) {
    const ready = await Promise.all(connections.map((c) => c.whenReady(3_000)));
    if (!ready.every(Boolean))
      logger.log("warn", "redis not reachable at startup; runtime policies load when it is");
  }
  await policies.start();
  // A changed root file replaces its root in place; policies are rebuilt with the new fingerprints.
  const stopWatchingRoots = watchTrustRoots({
    roots: config.trustedRoots,
    paths: config.trustedRootPaths,
    intervalMs: overrides.trustRootReloadIntervalMs ?? 2_000,
    logger,
    onChange: () => policies.invalidate(),
  });
  // Threads start on the first keyless verification (none for key-only policies).
  const pool = new VerificationPool({ metrics });
  const enforcer = createEnforcer(config, cache, metrics, pool);
  const manifests = createManifestCache({ maxBytes: config.cache.manifestMaxBytes });
  metrics.observe({
    manifestCacheBytes: () => manifests.bytes,
    manifestCacheEntries: () => manifests.entries,
    verdictCacheEntries: () => memory.size(),
    alerts: alerts ? () => alerts.stats() : undefined,
    auditFile: auditFile ? () => auditFile.stats : undefined,
  });
  const state = { draining: false, proxyHosts: [] as readonly string[] };
  const pull = new PullService({
    router,
    ownHosts: () => state.proxyHosts,
    clientsAuthenticate: clientAuth !== undefined,
    ...(overrides.readiness ? { readiness: overrides.readiness } : {}),
    manifestMaxBytes: config.manifests.maxBytes,
    tagTtlSeconds: config.cache.tagTtlSeconds,
    manifests,
    policies,
    enforcer,
    audit,
    logger,
    metrics,
  });
  const close = async () => {
    // What alerts are still queued go out (bounded by alerts.shutdownFlushMs) once every decision is made.
    await alerts?.stop();
    stopWatchingRoots();
    stopWatchingKms();
    kms.keyring.stop();
    kms.providers.close();
    await policies.close();
    await store.close();
    await cache.close();
    await Promise.all(connections.map((c) => c.close()));
    await router.close();
    await pool.close();
    process.off("SIGHUP", reopenAuditFile);
    await auditFile?.close();
  };
  return {
    config,
    logger,
    tracer,
    audit,
    decisions,
    cache,
    policies,
    enforcer,
    pull,
    metrics,
    clientAuth,
    state,
    close,
  };
}

/** The verdict cache and the policy store: in memory, or memory in front of Redis when configured. */
function createStores(
  config: Config,
  logger: Logger,
  metrics: PullgateMetrics,
  redisReconcileMs: number | undefined,
) {
  const connections: RedisConnection[] = [];
  const memory = createMemoryVerdictCache({ maxEntries: config.cache.memoryMaxEntries });
  let cache: VerdictCache = memory;
  let store: PolicyStore = createMemoryPolicyStore({ logger });
  // Everything stored in Redis is sealed with the replicas' shared HMAC key and checked when read back.
  if (config.redis) {
    const mac = createRedisEntryMac({ key: config.redis.hmacKey, logger, metrics });
    const tlsCa = config.redis.ca;
    const redis = createRedisConnection(config.redis.topology, { logger, name: "cache", metrics, tlsCa });
    const subscriber = createRedisConnection(config.redis.topology, {
      logger,
      name: "policy-subscriber",
      metrics,
      tlsCa,
    });
    connections.push(redis, subscriber);
    // Another replica's DELETE /admin/v1/cache/{digest} reaches this replica's memory tier.
    const onRemoteDelete = (digest: string) => memory.deleteDigest(digest);
    const shared = createRedisVerdictCache({
      redis,
      mac,
      logger,
      subscriber,
      onRemoteDelete,
      // The deletion log could not tell what another replica deleted: everything is read again from Redis.
      onRemoteClear: () => memory.clear(),
      ...(redisReconcileMs === undefined ? {} : { reconcileMs: redisReconcileMs }),
    });
    cache = createTieredVerdictCache({ memory, redis: shared });
    store = createRedisPolicyStore({
      redis,
      subscriber,
      mac,
      logger,
      ...(redisReconcileMs === undefined ? {} : { reconcileMs: redisReconcileMs }),
    });
  }
  return { memory, cache, store, connections };
}

function createEnforcer(
  config: Config,
  cache: VerdictCache,
  metrics: PullgateMetrics,
  pool: VerificationPool,
): Enforcer {
  return new Enforcer({
    pool,
    cache,
    limits: {
      maxManifestBytes: config.manifests.maxBytes,
      maxPayloadBytes: config.verification.maxPayloadBytes,
      maxBundleBytes: config.verification.maxBundleBytes,
      maxBlobs: config.verification.maxLookupBlobs,
      maxTotalBytes: config.verification.maxLookupBytes,
    },
    allowTtlSeconds: config.cache.allowTtlSeconds,
    denyTtlSeconds: config.cache.denyTtlSeconds,
    lookupTimeoutMs: config.verification.lookupTimeoutMs,
    maxConcurrentLookups: config.verification.maxConcurrentLookups,
    metrics,
  });
}

export interface Apps {
  proxy: Hono<ProxyEnv>;
  admin: ReturnType<typeof createAdminApp>;
}

/** The two Hono apps (what tests mount with app.request()). */
export function createApps(deps: Deps): Apps {
  return {
    proxy: createProxyApp({
      pull: deps.pull,
      logger: deps.logger,
      metrics: deps.metrics,
      accessLog: deps.config.log.access,
      clientAuth: deps.clientAuth,
      blobStreamsPerClient: deps.config.limits.blobStreamsPerClient,
      clientIdleMs: deps.config.limits.clientIdleMs,
    }),
    admin: createAdminApp({
      pull: deps.pull,
      metrics: deps.metrics,
      isDraining: () => deps.state.draining,
      api: {
        policies: deps.policies,
        cache: deps.cache,
        auth: createAdminAuthenticator({ token: deps.config.admin.token, jwt: deps.config.admin.jwt }),
        audit: deps.audit,
        logger: deps.logger,
        decisions: deps.decisions,
      },
    }),
  };
}
