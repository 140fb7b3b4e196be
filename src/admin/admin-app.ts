import { Hono } from "hono";
import type { VerdictCache } from "../cache/index.ts";
import { OciError, renderError, toOciError } from "../oci/index.ts";
import type { PolicyRegistry } from "../policy/index.ts";
import type { PullService } from "../pull/index.ts";
import type { AuditLog, Logger, PullgateMetrics, RecentDecisions } from "../telemetry/index.ts";
import { errorCause } from "../telemetry/logger.ts";
import type { AdminAuthenticator } from "./admin-auth.ts";
import type { AdminEnv } from "./admin-request.ts";
import { registerConsole } from "./console/console-routes.ts";
import { registerDecisionsRoute } from "./decisions-route.ts";
import { registerDryRun } from "./dry-run-route.ts";
import { registerPolicyRoutes } from "./policy-routes.ts";

export interface AdminAppDeps {
  /** Readiness, and the dry run's routing and decision: the upstream is reached through pull/ only. */
  pull: Pick<PullService, "ready" | "resolveImage" | "dryRun">;
  /** Prometheus text on GET /metrics (unauthenticated, like the probes: keep the admin port internal). */
  metrics?: Pick<PullgateMetrics, "render" | "contentType">;
  /** True once SIGTERM arrived: readiness fails so load balancers stop sending new pulls. */
  isDraining: () => boolean;
  /** The policy API; without it only the health endpoints exist (unit tests of health). */
  api?: {
    policies: PolicyRegistry;
    cache: VerdictCache;
    auth: AdminAuthenticator;
    audit: AuditLog;
    logger: Logger;
    /** The latest decisions (GET /admin/v1/decisions, the console's list); without it, no such endpoint. */
    decisions?: Pick<RecentDecisions, "list" | "capacity" | "size">;
  };
}

/**
 * Admin listener: /healthz (alive), /readyz (config loaded, default upstream reachable), and the
 * policy API under /admin/v1 (bearer token or JWT; every change goes to the audit log with its actor and
 * the role that allowed it). Roles: `read` for the GET endpoints and the dry run, `write:<project>` for
 * PUT/DELETE of that project's policy, `write` for everything (the static token is `write`). With the
 * API, the console's static page at /console/ (served without authentication, holds no data).
 */
export function createAdminApp(deps: AdminAppDeps): Hono<AdminEnv> {
  const app = new Hono<AdminEnv>();
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  if (deps.metrics) {
    const metrics = deps.metrics;
    app.get("/metrics", async (c) =>
      c.text(await metrics.render(), 200, { "content-type": metrics.contentType }),
    );
  }
  app.get("/readyz", async (c) => {
    if (deps.isDraining()) return c.json({ status: "draining" }, 503);
    const r = await deps.pull.ready();
    return c.json(
      {
        status: r.ok ? "ready" : "not ready",
        upstream: r.upstream,
        ...(r.reason ? { reason: r.reason } : {}),
      },
      r.ok ? 200 : 503,
    );
  });

  const api = deps.api;
  if (api) {
    app.use("/admin/v1/*", async (c, next) => {
      const r = await api.auth.authenticate(c.req.header("authorization"));
      if (!r.ok) {
        throw r.status === 403
          ? new OciError("DENIED", r.message, {
              headers: { "www-authenticate": 'Bearer realm="pullgate-admin", error="insufficient_scope"' },
            })
          : new OciError("UNAUTHORIZED", r.message, {
              headers: { "www-authenticate": 'Bearer realm="pullgate-admin"' },
            });
      }
      c.set("principal", { actor: r.actor, roles: r.roles });
      await next();
    });

    registerPolicyRoutes(app, api);
    registerDryRun(app, deps.pull);
    if (api.decisions) registerDecisionsRoute(app, api.decisions);
    // The console's static page (no data in it; it calls the API above with the token it is given).
    registerConsole(app);
  }

  app.notFound(() => renderError(new OciError("UNSUPPORTED", "not found", { status: 404 })));
  app.onError((err, c) => {
    if (err instanceof OciError) return renderError(err);
    if (c.req.path.startsWith("/admin/v1/") && c.req.method !== "GET") {
      // A write that could not be stored (Redis down) must say so, not pretend it worked.
      const code = (err as { code?: unknown }).code;
      deps.api?.logger.log("warn", "admin change failed", {
        path: c.req.path,
        code: typeof code === "string" ? code : "error",
        cause: errorCause(err),
      });
      return renderError(new OciError("UNAVAILABLE", "the change could not be stored; try again"));
    }
    deps.api?.logger.log("error", "admin request failed", { path: c.req.path, stack: (err as Error).stack });
    return renderError(toOciError(err));
  });
  return app;
}
