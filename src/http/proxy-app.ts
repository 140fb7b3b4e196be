import type { HttpBindings } from "@hono/node-server";
import { type Context, Hono } from "hono";
import { OciError } from "../oci/index.ts";
import type { PullService } from "../pull/index.ts";
import type { Logger } from "../telemetry/index.ts";
import { type Headers, header, UpstreamError, type UpstreamRouter } from "../upstream/index.ts";
import { type AccessEnv, accessLog } from "./access-log.ts";
import { parseRegistryPath, type RegistryPath, splitTarget } from "./parse-request.ts";
import { API_VERSION_HEADER, renderError, toOciError } from "./render-error.ts";
import { streamResponse } from "./stream-response.ts";

export interface ProxyAppDeps {
  pull: PullService;
  router: UpstreamRouter;
  logger: Logger;
  accessLog: boolean;
}

export type ProxyEnv = AccessEnv & { Bindings: Partial<HttpBindings> };

/** Headers of an upstream blob response that a client may see; everything else is dropped. */
const BLOB_HEADERS = [
  "content-type",
  "content-length",
  "content-range",
  "accept-ranges",
  "docker-content-digest",
  "etag",
  "last-modified",
] as const;
const RANGE_RE = /^bytes=\d*-\d*(?:,\s*\d*-\d*)*$/;

/**
 * The /v2 read API. Paths are parsed from the raw request target (node's incoming.url), before any
 * URL normalization, and validated completely before anything goes upstream.
 */
export function createProxyApp(deps: ProxyAppDeps): Hono<ProxyEnv> {
  const app = new Hono<ProxyEnv>();
  if (deps.accessLog) app.use(accessLog(deps.logger));
  else
    app.use(async (c, next) => {
      c.set("access", {});
      await next();
    });

  app.all("*", async (c) => {
    const { path, query } = splitTarget(rawTarget(c));
    // Hono dispatches HEAD as GET; the raw request keeps the real method.
    const method = c.req.raw.method;
    const access = c.get("access");
    if (!path.startsWith("/v2")) throw new OciError("UNSUPPORTED", "not found", { status: 404 });
    if (method !== "GET" && method !== "HEAD") {
      throw new OciError("UNSUPPORTED", "pullgate is a read-only proxy: only GET and HEAD are supported", {
        headers: { allow: "GET, HEAD" },
      });
    }
    const target = parseRegistryPath(path);
    access.kind = target.kind;
    const ctx = { clientAuthorization: c.req.header("authorization"), signal: c.req.raw.signal };
    if (target.kind === "base") {
      await deps.pull.checkBase(deps.router.defaultClient, ctx);
      access.bytes = method === "HEAD" ? 0 : 2;
      return new Response(method === "HEAD" ? null : "{}", {
        status: 200,
        headers: { ...API_VERSION_HEADER, "content-type": "application/json", "content-length": "2" },
      });
    }
    const params = new URLSearchParams(query);
    const route = deps.router.route(target.name, params.get("ns") ?? undefined);
    access.repository = route.name;
    access.upstream = route.upstream.name;
    return handle(c, deps, target, { route, params, ctx, method });
  });

  app.onError((err, c) => {
    const oci = toOciError(err, notFoundCodeFor(c.get("access")?.kind));
    if (oci.status >= 500) {
      const e = err as { code?: unknown; name?: string };
      // Errors no module coded keep their stack in the server log only.
      const coded = err instanceof OciError || err instanceof UpstreamError;
      const internal = coded ? {} : { stack: (err as Error).stack };
      deps.logger.log("warn", "request failed", {
        status: oci.status,
        code: typeof e.code === "string" ? e.code : e.name,
        upstream: c.get("access")?.upstream,
        repository: c.get("access")?.repository,
        ...internal,
      });
    }
    return renderError(oci, c.get("access"));
  });
  return app;
}

type Ctx = Context<ProxyEnv>;
interface Handling {
  route: ReturnType<UpstreamRouter["route"]>;
  params: URLSearchParams;
  ctx: { clientAuthorization: string | undefined; signal: AbortSignal };
  method: string;
}

async function handle(c: Ctx, deps: ProxyAppDeps, target: RegistryPath, h: Handling): Promise<Response> {
  const { route, params, ctx } = h;
  const method = h.method === "HEAD" ? "HEAD" : "GET";
  switch (target.kind) {
    case "manifest": {
      const m = await deps.pull.getManifest({
        ...ctx,
        route,
        reference: target.reference,
        method,
        accept: c.req.header("accept"),
      });
      const access = c.get("access");
      access.digest = m.digest;
      access.bytes = method === "HEAD" ? 0 : m.length;
      return new Response(method === "HEAD" ? null : new Uint8Array(m.bytes as Buffer), {
        status: 200,
        headers: {
          ...API_VERSION_HEADER,
          "content-type": m.contentType,
          "content-length": String(m.length),
          "docker-content-digest": m.digest,
          etag: `"${m.digest}"`,
        },
      });
    }
    case "blob": {
      c.get("access").digest = target.digest;
      const range = c.req.header("range");
      const res = await deps.pull.getBlob({
        ...ctx,
        route,
        digest: target.digest,
        method,
        range: range && RANGE_RE.test(range) ? range : undefined,
      });
      const headers: Record<string, string> = { ...API_VERSION_HEADER, ...pick(res.headers, BLOB_HEADERS) };
      const location = header(res.headers, "location");
      if (res.status >= 300 && res.status < 400 && location) headers.location = location;
      if (res.status === 200 && !headers["docker-content-digest"])
        headers["docker-content-digest"] = target.digest;
      if (res.body) return streamResponse(c, res.status, headers, res.body);
      return new Response(null, { status: res.status, headers });
    }
    case "tags": {
      const res = await deps.pull.listTags({
        ...ctx,
        route,
        n: params.get("n") ?? undefined,
        last: params.get("last") ?? undefined,
      });
      const headers: Record<string, string> = {
        ...API_VERSION_HEADER,
        "content-type": header(res.headers, "content-type") ?? "application/json",
        "content-length": String(res.bytes.length),
      };
      if (res.link) headers.link = res.link;
      c.get("access").bytes = method === "HEAD" ? 0 : res.bytes.length;
      return new Response(method === "HEAD" ? null : new Uint8Array(res.bytes), { status: 200, headers });
    }
    case "referrers": {
      const res = await deps.pull.getReferrers({
        ...ctx,
        route,
        digest: target.digest,
        artifactType: params.get("artifactType") ?? undefined,
      });
      const headers: Record<string, string> = {
        ...API_VERSION_HEADER,
        "content-type": header(res.headers, "content-type") ?? "application/vnd.oci.image.index.v1+json",
        "content-length": String(res.bytes.length),
      };
      const filters = header(res.headers, "oci-filters-applied");
      if (filters) headers["oci-filters-applied"] = filters;
      c.get("access").bytes = method === "HEAD" ? 0 : res.bytes.length;
      return new Response(method === "HEAD" ? null : new Uint8Array(res.bytes), { status: 200, headers });
    }
    case "base":
      throw new Error("unreachable: base handled by the caller");
  }
}

/** The raw request target from node (undecoded, unnormalized); falls back to the URL for app.request(). */
function rawTarget(c: Ctx): string {
  const incoming = c.env?.incoming?.url;
  if (typeof incoming === "string" && incoming.startsWith("/")) return incoming;
  const url = new URL(c.req.url);
  return `${url.pathname}${url.search}`;
}

function notFoundCodeFor(kind: string | undefined): OciError["code"] {
  if (kind === "manifest") return "MANIFEST_UNKNOWN";
  if (kind === "blob") return "BLOB_UNKNOWN";
  return "NAME_UNKNOWN";
}

function pick(headers: Headers, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const v = header(headers, name);
    if (v !== undefined) out[name] = v;
  }
  return out;
}
