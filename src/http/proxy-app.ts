import { type Context, Hono } from "hono";
import {
  API_VERSION_HEADER,
  type Digest,
  OciError,
  type Reference,
  renderError,
  toOciError,
} from "../oci/index.ts";
import type { ClientContext, PullService, PullTarget } from "../pull/index.ts";
import {
  type Logger,
  type PullgateMetrics,
  recordFailure,
  SPAN_ATTR,
  type Span,
  type TraceHeaders,
  tracingActive,
  withServerSpan,
  withSpanSync,
} from "../telemetry/index.ts";
import { statusClass } from "../telemetry/pullgate-metrics.ts";
import { accessLog, type ProxyEnv } from "./access-log.ts";
import type { ClientAuthenticator } from "./client-auth.ts";
import { ClientStreamLimit } from "./client-stream-limit.ts";
import { parseRegistryPath, type RegistryPath, splitTarget } from "./parse-request.ts";
import type { PullPermissions } from "./pull-permission.ts";
import { streamResponse } from "./stream-response.ts";

export interface ProxyAppDeps {
  pull: PullService;
  logger: Logger;
  accessLog: boolean;
  /**
   * Client authentication (clientAuth.htpasswd / clientAuth.jwt). When set, every /v2 request needs
   * credentials for pullgate, which are never forwarded upstream: pullgate's own logins apply.
   */
  clientAuth?: { authenticator: ClientAuthenticator; permissions: PullPermissions } | undefined;
  /** Blob downloads in flight per client address (default 16); more get 429. */
  blobStreamsPerClient?: number;
  /** A blob download whose client stopped reading is cut after this long without progress. */
  clientIdleMs?: number;
  /** pullgate_requests_total and pullgate_streamed_bytes_total. */
  metrics?: Pick<PullgateMetrics, "requests" | "streamedBytes"> | undefined;
}

/**
 * Headers of an upstream blob response that a client may see; everything else is dropped. The
 * upstream's Docker-Content-Digest is not among them: pullgate labels only bytes it checks.
 */
const BLOB_HEADERS = [
  "content-type",
  "content-length",
  "content-range",
  "accept-ranges",
  "etag",
  "last-modified",
] as const;
/** RFC 9110 byte ranges (each with a digit; only SP/HTAB around commas), bounded in length. */
const RANGE_RE =
  /^bytes=(?:\d{1,19}-\d{0,19}|-\d{1,19})(?:[ \t]*,[ \t]*(?:\d{1,19}-\d{0,19}|-\d{1,19})){0,63}$/;

/**
 * The /v2 read API. Paths are parsed from the raw request target (node's incoming.url), before any
 * URL normalization, and validated completely before anything goes upstream.
 */
export function createProxyApp(deps: ProxyAppDeps): Hono<ProxyEnv> {
  const app = new Hono<ProxyEnv>();
  const streams = new ClientStreamLimit(deps.blobStreamsPerClient ?? 16);
  app.use(requestSpan);
  if (deps.accessLog) app.use(accessLog(deps.logger));
  else
    app.use(async (c, next) => {
      c.set("access", {});
      await next();
    });
  const metrics = deps.metrics;
  if (metrics)
    app.use(async (c, next) => {
      await next();
      const access = c.get("access");
      metrics.requests.inc({
        kind: access.kind ?? "other",
        status_class: statusClass(access.status ?? c.res.status),
      });
      if (access.kind === "blob" && access.upstream)
        access.streamed?.then(({ bytes }) =>
          metrics.streamedBytes.inc({ upstream: access.upstream ?? "" }, bytes),
        );
    });

  app.all("*", async (c) => {
    const { path, query } = splitTarget(rawTarget(c));
    // Hono dispatches HEAD as GET; the raw request keeps the real method.
    const method = c.req.raw.method;
    const access = c.get("access");
    if (!path.startsWith("/v2")) throw new OciError("UNSUPPORTED", "not found", { status: 404 });
    const auth = deps.clientAuth;
    const principal = auth ? await auth.authenticator.authenticate(c.req.header("authorization")) : undefined;
    if (principal !== undefined) access.principal = principal;
    if (method !== "GET" && method !== "HEAD") {
      throw new OciError("UNSUPPORTED", "pullgate is a read-only proxy: only GET and HEAD are supported", {
        headers: { allow: "GET, HEAD" },
      });
    }
    const target = parseRegistryPath(path);
    access.kind = target.kind;
    // With client authentication, the client's Authorization is for pullgate: never forwarded upstream.
    const clientAuthorization = auth ? undefined : c.req.header("authorization");
    const ctx: ClientContext = { clientAuthorization, signal: c.req.raw.signal };
    if (target.kind === "base") {
      await deps.pull.checkBase(ctx);
      access.bytes = method === "HEAD" ? 0 : 2;
      return new Response(method === "HEAD" ? null : "{}", {
        status: 200,
        headers: { ...API_VERSION_HEADER, "content-type": "application/json", "content-length": "2" },
      });
    }
    const params = new URLSearchParams(query);
    const to = withSpanSync("pullgate.route", { [SPAN_ATTR.repository]: target.name }, (span) => {
      const resolved = deps.pull.resolve(target.name, params.get("ns") ?? undefined);
      span.setAttributes({
        [SPAN_ATTR.repository]: resolved.repository,
        [SPAN_ATTR.upstream]: resolved.upstream,
      });
      return resolved;
    });
    access.repository = to.repository;
    access.upstream = to.upstream;
    if (auth && principal !== undefined) auth.permissions.check(principal, to.repository, to.upstream);
    return handle(c, deps, target, { to, params, ctx, method, streams });
  });

  app.onError((err, c) => {
    const oci = toOciError(err);
    if (oci.status >= 500) {
      // The cause: an upstream failure's own code; errors no module coded keep their stack in the server log only.
      const cause = (err instanceof OciError ? (err.cause ?? err) : err) as { code?: unknown; name?: string };
      const internal = err instanceof OciError ? {} : { stack: (err as Error).stack };
      deps.logger.log("warn", "request failed", {
        status: oci.status,
        code: typeof cause.code === "string" ? cause.code : cause.name,
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

/**
 * The request's server span, the root of everything the request does (or the child of the caller's
 * span, when the request carries a W3C traceparent): its method, path (never the query) and status;
 * named by the route's shape once it is known (`GET /v2/{name}/manifests/{reference}`). A streamed
 * body (a blob) keeps it open until the body has been written or cut off.
 */
async function requestSpan(c: Ctx, next: () => Promise<void>): Promise<void> {
  // Nothing records: no attributes to work out, no headers to read, for every request.
  if (!tracingActive()) return next();
  const method = c.req.raw.method;
  const { path } = splitTarget(rawTarget(c));
  const host = c.req.header("host");
  const address = host ? hostAndPort(host) : undefined;
  await withServerSpan(
    method,
    {
      [SPAN_ATTR.method]: method,
      [SPAN_ATTR.urlPath]: path,
      ...(address ? { [SPAN_ATTR.serverAddress]: address.host } : {}),
      ...(address?.port ? { [SPAN_ATTR.serverPort]: address.port } : {}),
    },
    traceHeadersOf(c),
    async (span, endAfter) => {
      await next();
      const access = c.get("access");
      if (access?.kind) span.updateName(`${method} ${ROUTE_NAMES[access.kind] ?? "/v2/"}`);
      if (access?.repository) span.setAttribute(SPAN_ATTR.repository, access.repository);
      if (access?.upstream) span.setAttribute(SPAN_ATTR.upstream, access.upstream);
      if (access?.digest) span.setAttribute(SPAN_ATTR.digest, access.digest);
      const status = access?.status ?? c.res.status;
      span.setAttribute(SPAN_ATTR.status, status);
      if (status >= 500) recordFailure(span, { code: String(status) });
      if (access?.streamed) endAfter(access.streamed.then((body) => recordStreamedBody(span, body)));
    },
  );
}

/** The request's W3C trace context headers (a malformed traceparent is ignored by the propagator). */
function traceHeadersOf(c: Ctx): TraceHeaders {
  return { traceparent: c.req.header("traceparent"), tracestate: c.req.header("tracestate") };
}

/** What a streamed body came to: the bytes written, and whether it was cut off before its end. */
function recordStreamedBody(span: Span, body: { bytes: number; aborted: boolean }): void {
  span.setAttribute(SPAN_ATTR.responseBodySize, body.bytes);
  if (body.aborted) span.setAttribute(SPAN_ATTR.responseAborted, true);
}

const ROUTE_NAMES: Readonly<Record<string, string>> = {
  base: "/v2/",
  manifest: "/v2/{name}/manifests/{reference}",
  blob: "/v2/{name}/blobs/{digest}",
  tags: "/v2/{name}/tags/list",
  referrers: "/v2/{name}/referrers/{digest}",
};

/** The Host header's name and port (brackets of an IPv6 literal dropped). */
function hostAndPort(host: string): { host: string; port: number | undefined } | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(host.trim());
  if (!m?.[1]) return undefined;
  return { host: m[1].replace(/^\[|\]$/g, ""), port: m[2] ? Number(m[2]) : undefined };
}
interface Handling {
  to: PullTarget;
  params: URLSearchParams;
  ctx: ClientContext;
  method: string;
  streams: ClientStreamLimit;
}

type Method = "GET" | "HEAD";

function handle(c: Ctx, deps: ProxyAppDeps, target: RegistryPath, h: Handling): Promise<Response> {
  const method: Method = h.method === "HEAD" ? "HEAD" : "GET";
  switch (target.kind) {
    case "manifest":
      return serveManifest(c, deps, h, method, target.reference);
    case "blob":
      return serveBlob(c, deps, h, method, target.digest);
    case "tags":
      return serveTags(c, deps, h, method);
    case "referrers":
      return serveReferrers(c, deps, h, method, target.digest);
    case "base":
      throw new Error("unreachable: base handled by the caller");
  }
}

async function serveManifest(
  c: Ctx,
  deps: ProxyAppDeps,
  h: Handling,
  method: Method,
  reference: Reference,
): Promise<Response> {
  const m = await deps.pull.getManifest({
    ...h.ctx,
    target: h.to,
    reference,
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

async function serveBlob(
  c: Ctx,
  deps: ProxyAppDeps,
  h: Handling,
  method: Method,
  digest: Digest,
): Promise<Response> {
  c.get("access").digest = digest;
  const range = c.req.header("range");
  const release = h.streams.acquire(c.env?.incoming?.socket?.remoteAddress ?? "local");
  try {
    const res = await deps.pull.getBlob({
      ...h.ctx,
      target: h.to,
      digest,
      method,
      range: range && RANGE_RE.test(range) ? range : undefined,
    });
    const headers: Record<string, string> = { ...API_VERSION_HEADER, ...pick(res.headers, BLOB_HEADERS) };
    const location = res.headers.location;
    if (res.status >= 300 && res.status < 400 && location) headers.location = location;
    // Only bytes that are checked against the digest as they stream carry it as a label.
    if (res.verified) headers["docker-content-digest"] = digest;
    if (res.body !== undefined) {
      const response = streamResponse(c, res.status, headers, res.body, deps.clientIdleMs);
      const streamed = c.get("access").streamed;
      if (streamed) streamed.finally(release);
      else res.body.once("close", release);
      return response;
    }
    release();
    return new Response(null, { status: res.status, headers });
  } catch (err) {
    release();
    throw err;
  }
}

async function serveTags(c: Ctx, deps: ProxyAppDeps, h: Handling, method: Method): Promise<Response> {
  const res = await deps.pull.listTags({
    ...h.ctx,
    target: h.to,
    n: h.params.get("n") ?? undefined,
    last: h.params.get("last") ?? undefined,
  });
  const extra: Record<string, string> = res.link ? { link: res.link } : {};
  return listing(c, method, res.bytes, res.headers["content-type"] ?? "application/json", extra);
}

async function serveReferrers(
  c: Ctx,
  deps: ProxyAppDeps,
  h: Handling,
  method: Method,
  digest: Digest,
): Promise<Response> {
  const res = await deps.pull.getReferrers({
    ...h.ctx,
    target: h.to,
    digest,
    artifactType: h.params.get("artifactType") ?? undefined,
  });
  const filters = res.headers["oci-filters-applied"];
  const extra: Record<string, string> = filters ? { "oci-filters-applied": filters } : {};
  const type = res.headers["content-type"] ?? "application/vnd.oci.image.index.v1+json";
  return listing(c, method, res.bytes, type, extra);
}

/** A JSON listing (tags, referrers) relayed whole. */
function listing(
  c: Ctx,
  method: Method,
  bytes: Buffer,
  contentType: string,
  extra: Record<string, string>,
): Response {
  const headers: Record<string, string> = {
    ...API_VERSION_HEADER,
    "content-type": contentType,
    "content-length": String(bytes.length),
    ...extra,
  };
  c.get("access").bytes = method === "HEAD" ? 0 : bytes.length;
  return new Response(method === "HEAD" ? null : new Uint8Array(bytes), { status: 200, headers });
}

/** The raw request target from node (undecoded, unnormalized); falls back to the URL for app.request(). */
function rawTarget(c: Ctx): string {
  const incoming = c.env?.incoming?.url;
  if (typeof incoming === "string" && incoming.startsWith("/")) return incoming;
  const url = new URL(c.req.url);
  return `${url.pathname}${url.search}`;
}

function pick(headers: Readonly<Record<string, string>>, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const v = headers[name];
    if (v !== undefined) out[name] = v;
  }
  return out;
}
