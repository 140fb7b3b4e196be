import { Hono } from "hono";
import type { UpstreamRouter } from "../upstream/index.ts";

export interface AdminAppDeps {
  router: UpstreamRouter;
  /** True once SIGTERM arrived: readiness fails so load balancers stop sending new pulls. */
  isDraining: () => boolean;
  readinessTimeoutMs?: number;
  /** How long a readiness answer is reused, so probes cannot hammer the upstream. */
  readinessCacheMs?: number;
  now?: () => number;
}

/** Admin listener: /healthz (the process is alive) and /readyz (config loaded, default upstream reachable). */
export function createAdminApp(deps: AdminAppDeps): Hono {
  const app = new Hono();
  const now = deps.now ?? Date.now;
  const cacheMs = deps.readinessCacheMs ?? 1_000;
  let cached: { at: number; result: { ok: boolean; upstream: string; reason?: string } } | undefined;
  let pending: Promise<{ ok: boolean; upstream: string; reason?: string }> | undefined;

  const checkUpstream = async () => {
    const client = deps.router.defaultClient ?? deps.router.clients[0];
    if (!client) return { ok: false, upstream: "", reason: "no upstream" };
    const signal = AbortSignal.timeout(deps.readinessTimeoutMs ?? 2_000);
    try {
      const { status } = await client.ping({ signal });
      // 200 or 401 both prove a registry is answering.
      const ok = status === 200 || status === 401;
      return ok
        ? { ok, upstream: client.config.name }
        : { ok, upstream: client.config.name, reason: `upstream answered ${status}` };
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      return { ok: false, upstream: client.config.name, reason: typeof code === "string" ? code : "error" };
    }
  };

  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", async (c) => {
    if (deps.isDraining()) return c.json({ status: "draining" }, 503);
    if (!cached || now() - cached.at > cacheMs) {
      pending ??= checkUpstream().finally(() => {
        pending = undefined;
      });
      cached = { at: now(), result: await pending };
    }
    const r = cached.result;
    return c.json(
      {
        status: r.ok ? "ready" : "not ready",
        upstream: r.upstream,
        ...(r.reason ? { reason: r.reason } : {}),
      },
      r.ok ? 200 : 503,
    );
  });
  app.notFound((c) => c.json({ errors: [{ code: "UNSUPPORTED", message: "not found" }] }, 404));
  app.onError((_err, c) => c.json({ errors: [{ code: "UNAVAILABLE", message: "internal error" }] }, 500));
  return app;
}
