import type { Hono } from "hono";
import type { Dispatcher } from "undici";
import { createAdminApp, createAdminAuthenticator } from "./admin/index.ts";
import {
  createMemoryVerdictCache,
  createRedisConnection,
  createRedisVerdictCache,
  createTieredVerdictCache,
  type RedisConnection,
  type VerdictCache,
} from "./cache/index.ts";
import { type Config, ConfigError, type UpstreamConfig } from "./config/index.ts";
import { createProxyApp, type ProxyEnv } from "./http/index.ts";
import {
  createMemoryPolicyStore,
  createRedisPolicyStore,
  PolicyRegistry,
  type PolicyStore,
} from "./policy/index.ts";
import { Enforcer, PullService } from "./pull/index.ts";
import {
  type AuditLog,
  createAuditLog,
  createLogger,
  createTracer,
  type Logger,
  type Tracer,
} from "./telemetry/index.ts";
import { RegistryClient, UpstreamRouter } from "./upstream/index.ts";
import { parseTrustedKey } from "./verify/index.ts";

export interface Deps {
  config: Config;
  logger: Logger;
  tracer: Tracer;
  audit: AuditLog;
  router: UpstreamRouter;
  cache: VerdictCache;
  policies: PolicyRegistry;
  enforcer: Enforcer;
  pull: PullService;
  state: { draining: boolean };
  /** Releases pools, Redis connections and subscriptions. */
  close(): Promise<void>;
}

export interface DepsOverrides {
  logger?: Logger;
  tracer?: Tracer;
  /** Unit tests give upstreams an undici MockAgent. */
  dispatcherFor?: (upstream: UpstreamConfig) => Dispatcher;
}

/**
 * Builds every dependency once from the config; nothing is a module-level singleton. Keys are
 * checked here (verify/ decides what is acceptable), reported like any other config problem.
 */
export async function createDeps(config: Config, overrides: DepsOverrides = {}): Promise<Deps> {
  const logger = overrides.logger ?? createLogger();
  const tracer = overrides.tracer ?? createTracer();
  const audit = createAuditLog(logger);
  const router = new UpstreamRouter(
    config.upstreams.map((u) => {
      const dispatcher = overrides.dispatcherFor?.(u);
      return new RegistryClient(u, dispatcher ? { tracer, dispatcher } : { tracer });
    }),
  );
  const connections: RedisConnection[] = [];
  const memory = createMemoryVerdictCache({ maxEntries: config.cache.memoryMaxEntries });
  let cache: VerdictCache = memory;
  let store: PolicyStore = createMemoryPolicyStore({ logger });
  if (config.redis) {
    const redis = createRedisConnection(config.redis.url, { logger, name: "cache" });
    const subscriber = createRedisConnection(config.redis.url, { logger, name: "policy-subscriber" });
    connections.push(redis, subscriber);
    cache = createTieredVerdictCache({ memory, redis: createRedisVerdictCache({ redis, logger }) });
    store = createRedisPolicyStore({ redis, subscriber, logger });
  }
  const policies = new PolicyRegistry(config, {
    store,
    fingerprintKey: (k) => parseTrustedKey(k).fingerprint,
    logger,
  });
  const keyProblems = policies.checkConfiguredKeys();
  if (keyProblems.length > 0) {
    await Promise.all(connections.map((c) => c.close()));
    throw new ConfigError(config.source, keyProblems);
  }
  // Runtime policy changes live in Redis: give it a moment at startup so a new replica does not
  // start on the file config while a stricter runtime policy is in force (bounded; the store's
  // subscription reloads as soon as Redis is back if it is down now).
  if (connections.length > 0) {
    const ready = await Promise.all(connections.map((c) => c.whenReady(3_000)));
    if (!ready.every(Boolean))
      logger.log("warn", "redis not reachable at startup; runtime policies load when it is");
  }
  await policies.start();
  const enforcer = new Enforcer({
    cache,
    limits: {
      maxManifestBytes: config.manifests.maxBytes,
      maxPayloadBytes: config.verification.maxPayloadBytes,
      maxBundleBytes: config.verification.maxBundleBytes,
    },
    allowTtlSeconds: config.cache.allowTtlSeconds,
    denyTtlSeconds: config.cache.denyTtlSeconds,
  });
  const pull = new PullService({
    manifestMaxBytes: config.manifests.maxBytes,
    policies,
    enforcer,
    audit,
    logger,
  });
  const close = async () => {
    await policies.close();
    await store.close();
    await cache.close();
    await Promise.all(connections.map((c) => c.close()));
    await router.close();
  };
  return {
    config,
    logger,
    tracer,
    audit,
    router,
    cache,
    policies,
    enforcer,
    pull,
    state: { draining: false },
    close,
  };
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
      router: deps.router,
      logger: deps.logger,
      accessLog: deps.config.log.access,
    }),
    admin: createAdminApp({
      router: deps.router,
      isDraining: () => deps.state.draining,
      api: {
        policies: deps.policies,
        pull: deps.pull,
        cache: deps.cache,
        auth: createAdminAuthenticator({ token: deps.config.admin.token, jwt: deps.config.admin.jwt }),
        audit: deps.audit,
        logger: deps.logger,
      },
    }),
  };
}
