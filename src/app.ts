import type { Hono } from "hono";
import type { Dispatcher } from "undici";
import { createAdminApp } from "./admin/index.ts";
import type { Config, UpstreamConfig } from "./config/index.ts";
import { createProxyApp, type ProxyEnv } from "./http/index.ts";
import { PullService } from "./pull/index.ts";
import { createLogger, createTracer, type Logger, type Tracer } from "./telemetry/index.ts";
import { RegistryClient, UpstreamRouter } from "./upstream/index.ts";

export interface Deps {
  config: Config;
  logger: Logger;
  tracer: Tracer;
  router: UpstreamRouter;
  pull: PullService;
  state: { draining: boolean };
}

/** Builds every dependency once from the config; nothing is a module-level singleton. */
export interface DepsOverrides {
  logger?: Logger;
  tracer?: Tracer;
  /** Unit tests give upstreams an undici MockAgent. */
  dispatcherFor?: (upstream: UpstreamConfig) => Dispatcher;
}

export function createDeps(config: Config, overrides: DepsOverrides = {}): Deps {
  const logger = overrides.logger ?? createLogger();
  const tracer = overrides.tracer ?? createTracer();
  const router = new UpstreamRouter(
    config.upstreams.map((u) => {
      const dispatcher = overrides.dispatcherFor?.(u);
      return new RegistryClient(u, dispatcher ? { tracer, dispatcher } : { tracer });
    }),
  );
  const pull = new PullService({ manifestMaxBytes: config.manifests.maxBytes });
  return { config, logger, tracer, router, pull, state: { draining: false } };
}

export interface Apps {
  proxy: Hono<ProxyEnv>;
  admin: Hono;
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
    admin: createAdminApp({ router: deps.router, isDraining: () => deps.state.draining }),
  };
}
