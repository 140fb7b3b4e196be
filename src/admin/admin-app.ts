import { type Context, Hono } from "hono";
import type { VerdictCache } from "../cache/index.ts";
import { isDigest, OciError, parseName, renderError, toOciError } from "../oci/index.ts";
import { type PolicyRegistry, toPolicyView } from "../policy/index.ts";
import type { PullService } from "../pull/index.ts";
import type { AuditLog, Logger, PullgateMetrics } from "../telemetry/index.ts";
import {
  type AdminAuthenticator,
  type AdminPermission,
  type AdminPrincipal,
  type AdminRole,
  authorizeAdmin,
} from "./admin-auth.ts";

export interface AdminAppDeps {
  /** Readiness, and the dry run's routing and decision: the upstream is reached through pull/ only. */
  pull: Pick<PullService, "ready" | "resolveImage" | "dryRun">;
  /** Prometheus text on GET /metrics (unauthenticated, like the probes: keep the admin port internal). */
  metrics?: Pick<PullgateMetrics, "render">;
  /** True once SIGTERM arrived: readiness fails so load balancers stop sending new pulls. */
  isDraining: () => boolean;
  /** The policy API; without it only the health endpoints exist (unit tests of health). */
  api?: {
    policies: PolicyRegistry;
    cache: VerdictCache;
    auth: AdminAuthenticator;
    audit: AuditLog;
    logger: Logger;
  };
}

const MAX_BODY_BYTES = 256 * 1024;

type AdminEnv = { Variables: { principal: AdminPrincipal } };

/**
 * Admin listener: /healthz (alive), /readyz (config loaded, default upstream reachable), and the
 * policy API under /admin/v1 (bearer token or JWT; every change goes to the audit log with its actor and
 * the role that allowed it). Roles: `read` for the GET endpoints and the dry run, `write:<project>` for
 * PUT/DELETE of that project's policy, `write` for everything (the static token is `write`).
 */
export function createAdminApp(deps: AdminAppDeps): Hono<AdminEnv> {
  const app = new Hono<AdminEnv>();
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  if (deps.metrics) {
    const metrics = deps.metrics;
    app.get("/metrics", (c) =>
      c.text(metrics.render(), 200, { "content-type": "text/plain; version=0.0.4" }),
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

    app.get("/admin/v1/projects", (c) => {
      authorize(c, { action: "read" });
      return c.json({
        projects: api.policies.list().map(toPolicyView),
        defaults: toPolicyView(api.policies.forProject("")),
      });
    });

    app.get("/admin/v1/projects/:project/policy", (c) => {
      const project = projectParam(c);
      authorize(c, { action: "read" });
      return c.json(toPolicyView(api.policies.forProject(project)));
    });

    app.put("/admin/v1/projects/:project/policy", async (c) => {
      const project = projectParam(c);
      const role = authorize(c, { action: "write-project", project });
      const body = await readJson(c);
      const { before, after } = await api.policies.update(project, body);
      api.audit.adminChange({
        actor: c.get("principal").actor,
        role,
        action: "policy.update",
        target: project,
        before: toPolicyView(before),
        after: toPolicyView(after),
      });
      return c.json(toPolicyView(after));
    });

    app.delete("/admin/v1/projects/:project/policy", async (c) => {
      const project = projectParam(c);
      const role = authorize(c, { action: "write-project", project });
      const { before, after } = await api.policies.reset(project);
      api.audit.adminChange({
        actor: c.get("principal").actor,
        role,
        action: "policy.reset",
        target: project,
        before: toPolicyView(before),
        after: toPolicyView(after),
      });
      return c.json(toPolicyView(after));
    });

    app.post("/admin/v1/verify", async (c) => {
      authorize(c, { action: "read" });
      const body = (await readJson(c)) as { reference?: unknown; upstream?: unknown };
      if (typeof body?.reference !== "string") throw badRequest('body must be {"reference": "proj/app:v1"}');
      const { target, reference } = deps.pull.resolveImage(
        body.reference,
        typeof body.upstream === "string" ? body.upstream : undefined,
      );
      const r = await deps.pull.dryRun({ target, reference, signal: c.req.raw.signal });
      const d = r.decision;
      return c.json({
        reference: body.reference,
        upstream: target.upstream,
        repository: target.repository,
        project: r.policy.project,
        mode: r.policy.mode,
        digest: r.manifest.digest,
        outcome: r.outcome,
        reason:
          d?.outcome === "deny"
            ? d.reason
            : d?.outcome === "unavailable"
              ? "SIGNATURE_UNAVAILABLE"
              : undefined,
        via: d?.outcome === "allow" ? d.via : undefined,
        key: d?.outcome === "allow" ? d.key : undefined,
        keyFingerprint: d?.outcome === "allow" ? d.keyFingerprint : undefined,
        unavailable: d?.outcome === "unavailable" ? d.detail : undefined,
        signatures: d?.signatures ?? [],
      });
    });

    app.delete("/admin/v1/cache/:digest", async (c) => {
      const digest = c.req.param("digest");
      const role = authorize(c, { action: "write" });
      if (!isDigest(digest)) throw new OciError("DIGEST_INVALID", "invalid digest");
      const deleted = await api.cache.deleteDigest(digest);
      api.audit.adminChange({
        actor: c.get("principal").actor,
        role,
        action: "cache.delete",
        target: digest,
        after: { deleted },
      });
      return c.json({ digest, deleted });
    });
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
      });
      return renderError(new OciError("UNAVAILABLE", "the change could not be stored; try again"));
    }
    deps.api?.logger.log("error", "admin request failed", { path: c.req.path, stack: (err as Error).stack });
    return renderError(toOciError(err));
  });
  return app;
}

/** The role that allows `permission` to the caller; 403 DENIED when none does. */
function authorize(c: Context<AdminEnv>, permission: AdminPermission): AdminRole {
  const role = authorizeAdmin(c.get("principal"), permission);
  if (role) return role;
  const needed =
    permission.action === "read"
      ? "read (or write)"
      : permission.action === "write-project"
        ? `write:${permission.project} (or write)`
        : "write";
  throw new OciError("DENIED", `this admin request needs the role ${needed}`, {
    detail: { required: needed.split(" ")[0] },
  });
}

function projectParam(c: Context<AdminEnv>): string {
  const project = c.req.param("project") ?? "";
  if (project.includes("/")) throw new OciError("NAME_INVALID", "invalid project name");
  return parseName(project);
}

async function readJson(c: Context<AdminEnv>): Promise<unknown> {
  const declared = Number(c.req.header("content-length") ?? "0");
  if (declared > MAX_BODY_BYTES) throw badRequest("body too large");
  // Read at most the cap, also when the client sent no Content-Length (chunked).
  const chunks: Uint8Array[] = [];
  let total = 0;
  const body = c.req.raw.body;
  if (body) {
    const reader = body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > MAX_BODY_BYTES) {
        await reader.cancel().catch(() => {});
        throw badRequest("body too large");
      }
      chunks.push(value);
    }
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw badRequest("body is not JSON");
  }
}

function badRequest(message: string): OciError {
  return new OciError("UNSUPPORTED", message, { status: 400 });
}
