import type { Readable } from "node:stream";
import { Agent, type Dispatcher } from "undici";
import type { UpstreamConfig } from "../config/index.ts";
import type { Digest } from "../oci/index.ts";
import {
  createPullgateMetrics,
  type PullgateMetrics,
  type Tracer,
  traceHeaders,
  withClientSpan,
} from "../telemetry/index.ts";
import { statusClass, upstreamKindOf } from "../telemetry/pullgate-metrics.ts";
import { addressLiteral, isInternalAddress, publicOnlyLookup } from "./address-guard.ts";
import { UpstreamAuth } from "./auth.ts";
import { createCredentialSource } from "./credential-source.ts";
import { isRetryableConnectionError, toUpstreamError, UpstreamError } from "./errors.ts";
import { BodyTooLargeError, discardBody, readBounded, readErrorEntries } from "./read-body.ts";

export const USER_AGENT = "pullgate/0.1.0";
const MAX_REDIRECTS = 5;
const MAX_LISTING_BYTES = 4 * 1024 * 1024;

export type Headers = Record<string, string | string[] | undefined>;

export interface RequestContext {
  /** The client's own Authorization header, forwarded unchanged; pullgate's credentials are used only without it. */
  clientAuthorization?: string | undefined;
  signal?: AbortSignal | undefined;
  /**
   * A signature lookup's request (pullgate's own work, not a client's): it goes through a pool of its
   * own, so a herd of lookups never makes a client's manifest request wait for a connection.
   */
  lookup?: boolean | undefined;
}

export interface ManifestResponse {
  /** Content-Type exactly as the upstream sent it. */
  contentType: string | undefined;
  /** Docker-Content-Digest as the upstream claimed it (untrusted). */
  claimedDigest: string | undefined;
  /** GET: the exact bytes. HEAD: undefined. */
  bytes: Buffer | undefined;
  /** Content-Length as the upstream claimed it (HEAD), or bytes.length (GET). */
  length: number | undefined;
}

export interface BlobResponse {
  status: number;
  headers: Headers;
  /** null for HEAD and for a passed-through redirect. */
  body: Readable | null;
}

export interface ListingResponse {
  status: number;
  headers: Headers;
  bytes: Buffer;
}

interface SendOptions extends RequestContext {
  method: "GET" | "HEAD";
  /** api: manifests, listings, tokens, signature blobs; blob: streamed layer downloads (own pool, own deadline). */
  pool?: "api" | "blob";
  path: string;
  headers?: Record<string, string>;
  /** Token scope, e.g. "repository:library/nginx:pull"; "" for /v2/. */
  scope: string;
  /** Default true; false returns a 3xx to the caller (blobs with `redirects: pass`). */
  followRedirects?: boolean;
}

/**
 * One upstream registry: a keep-alive pooled undici Agent (which also serves the object-storage
 * origins blobs redirect to), token auth, timeouts, and one retry of idempotent requests on
 * connection errors. Methods return raw upstream data; pull/ decides what to serve.
 */
/** What a client counts: requests to the registry's own origin, and new connections to any origin. */
export type UpstreamMetrics = Pick<
  PullgateMetrics,
  "upstreamRequests" | "upstreamConnections" | "upstreamResponses" | "upstreamSeconds"
>;

export class RegistryClient {
  readonly config: UpstreamConfig;
  readonly auth: UpstreamAuth;
  /** Clients' manifests and listings, and tokens. */
  readonly #api: Dispatcher;
  /** Signature lookups (same size as #api): lookups queue among themselves, never before a client. */
  readonly #lookups: Dispatcher;
  /** Streamed blobs: slow clients can fill this pool, never the one decisions need. */
  readonly #blobs: Dispatcher;
  /** Redirect targets on other origins: connects only to public addresses (checked after DNS). */
  readonly #external: Dispatcher;
  readonly #tracer: Tracer;
  /** The total-deadline signal of each response whose body is still to be read. */
  readonly #deadlines = new WeakMap<object, AbortSignal>();
  readonly #metrics: UpstreamMetrics;

  constructor(
    config: UpstreamConfig,
    deps: { tracer: Tracer; dispatcher?: Dispatcher; metrics?: UpstreamMetrics | undefined },
  ) {
    this.#metrics = deps.metrics ?? createPullgateMetrics();
    this.config = config;
    this.#tracer = deps.tracer;
    const agent = (connections: number, extra: object = {}) =>
      new Agent({
        connections,
        connect: { timeout: config.timeouts.connectMs, ...extra },
        headersTimeout: config.timeouts.headersMs,
        bodyTimeout: config.timeouts.bodyIdleMs,
        keepAliveTimeout: 30_000,
      });
    this.#api = deps.dispatcher ?? agent(config.apiConnections);
    this.#lookups = deps.dispatcher ?? agent(config.apiConnections);
    this.#blobs = deps.dispatcher ?? agent(config.connections);
    this.#external = deps.dispatcher ?? agent(config.connections, { lookup: publicOnlyLookup });
    for (const d of new Set([this.#api, this.#lookups, this.#blobs, this.#external])) {
      d.on("connect", () => {
        this.#metrics.upstreamConnections.inc({ upstream: config.name });
      });
    }
    this.auth = new UpstreamAuth({
      upstream: config.name,
      origin: config.url,
      credentials: config.credentials
        ? createCredentialSource(config.credentials, { upstream: config.name })
        : undefined,
      tokenRealms: config.tokenRealms,
      dispatcher: this.#api,
      userAgent: USER_AGENT,
      timeoutMs: config.timeouts.headersMs,
    });
  }

  async close(): Promise<void> {
    await Promise.all(
      [...new Set([this.#api, this.#lookups, this.#blobs, this.#external])].map((d) => d.close()),
    );
  }

  /**
   * GET /v2/ (the API version check). With the client's Authorization it is forwarded as is; without,
   * pullgate answers challenges with its own credentials or anonymous tokens. Any HTTP answer, 200 or
   * 401, proves a registry is there.
   */
  async ping(opts: RequestContext = {}): Promise<{ status: number; challenge: string | undefined }> {
    const res = await this.#send({ ...opts, method: "GET", path: "/v2/", scope: "" });
    res.body.dump().catch(() => {});
    return { status: res.statusCode, challenge: header(res.headers, "www-authenticate") };
  }

  async getManifest(
    name: string,
    reference: string,
    opts: RequestContext & { method: "GET" | "HEAD"; accept: string | undefined; maxBytes: number },
  ): Promise<ManifestResponse> {
    const headers: Record<string, string> = {};
    if (opts.accept) headers.accept = opts.accept;
    const res = await this.#send({
      ...opts,
      path: `/v2/${name}/manifests/${reference}`,
      headers,
      scope: pullScope(name),
    });
    await this.#throwOnError(res, opts.method);
    const contentType = header(res.headers, "content-type");
    const claimedDigest = header(res.headers, "docker-content-digest");
    const declared = contentLength(res.headers);
    if (opts.method === "HEAD") {
      res.body.dump().catch(() => {});
      return { contentType, claimedDigest, bytes: undefined, length: declared };
    }
    if (declared !== undefined && declared > opts.maxBytes) {
      discardBody(res.body);
      throw new UpstreamError(
        "TOO_LARGE",
        this.config.name,
        `manifest is larger than ${opts.maxBytes} bytes`,
      );
    }
    let bytes: Buffer;
    try {
      bytes = await readBounded(res.body, opts.maxBytes);
    } catch (err) {
      if (err instanceof BodyTooLargeError) {
        throw new UpstreamError(
          "TOO_LARGE",
          this.config.name,
          `manifest is larger than ${opts.maxBytes} bytes`,
        );
      }
      throw this.#bodyError(err, res, opts.signal);
    }
    if (declared !== undefined && declared !== bytes.length) {
      throw new UpstreamError(
        "BAD_RESPONSE",
        this.config.name,
        "manifest length differs from Content-Length",
      );
    }
    return { contentType, claimedDigest, bytes, length: bytes.length };
  }

  async getBlob(
    name: string,
    digest: Digest,
    opts: RequestContext & {
      method: "GET" | "HEAD";
      range: string | undefined;
      followRedirects?: boolean;
      pool?: "api" | "blob";
    },
  ): Promise<BlobResponse> {
    const headers: Record<string, string> = {};
    if (opts.range) headers.range = opts.range;
    const follow = opts.followRedirects ?? this.config.redirects === "follow";
    const res = await this.#send({
      ...opts,
      pool: opts.pool ?? "blob",
      path: `/v2/${name}/blobs/${digest}`,
      headers,
      scope: pullScope(name),
      followRedirects: follow,
    });
    if (!follow && isRedirect(res.statusCode) && header(res.headers, "location")) {
      res.body.dump().catch(() => {});
      return { status: res.statusCode, headers: res.headers, body: null };
    }
    // 416 (range not satisfiable) is a normal answer to relay, not an upstream failure.
    if (res.statusCode !== 416) await this.#throwOnError(res, opts.method);
    if (opts.method === "HEAD" || res.statusCode === 416) {
      res.body.dump().catch(() => {});
      return { status: res.statusCode, headers: res.headers, body: null };
    }
    return { status: res.statusCode, headers: res.headers, body: res.body };
  }

  /** A small blob read whole (signature payloads, bundles), refused past `maxBytes`. */
  async getBlobBytes(
    name: string,
    digest: Digest,
    opts: RequestContext & { maxBytes: number },
  ): Promise<Buffer> {
    const res = await this.getBlob(name, digest, {
      ...opts,
      method: "GET",
      range: undefined,
      followRedirects: true,
      pool: "api",
    });
    const body = res.body;
    if (!body) throw new UpstreamError("BAD_RESPONSE", this.config.name, "blob answered without a body");
    if (res.status !== 200) {
      discardBody(body);
      throw new UpstreamError("BAD_RESPONSE", this.config.name, `blob answered ${res.status}`);
    }
    try {
      return await readBounded(body, opts.maxBytes);
    } catch (err) {
      if (err instanceof BodyTooLargeError) {
        throw new UpstreamError("TOO_LARGE", this.config.name, `blob is larger than ${opts.maxBytes} bytes`);
      }
      throw this.#bodyError(err, body, opts.signal);
    }
  }

  async listTags(name: string, query: string, opts: RequestContext): Promise<ListingResponse> {
    return this.#getListing(`/v2/${name}/tags/list${query}`, name, opts);
  }

  async getReferrers(
    name: string,
    digest: Digest,
    query: string,
    opts: RequestContext,
  ): Promise<ListingResponse> {
    return this.#getListing(`/v2/${name}/referrers/${digest}${query}`, name, opts);
  }

  async #getListing(path: string, name: string, opts: RequestContext): Promise<ListingResponse> {
    const res = await this.#send({ ...opts, method: "GET", path, scope: pullScope(name) });
    await this.#throwOnError(res, "GET");
    try {
      const bytes = await readBounded(res.body, MAX_LISTING_BYTES);
      return { status: res.statusCode, headers: res.headers, bytes };
    } catch (err) {
      if (err instanceof BodyTooLargeError) {
        throw new UpstreamError("TOO_LARGE", this.config.name, "listing is larger than the size cap");
      }
      throw this.#bodyError(err, res, opts.signal);
    }
  }

  /** Non-2xx (other than 3xx handled by #send) becomes a STATUS error carrying what a client should see. */
  async #throwOnError(res: Dispatcher.ResponseData, method: "GET" | "HEAD"): Promise<void> {
    const status = res.statusCode;
    if (status >= 200 && status < 300) return;
    const entries = method === "GET" ? await readErrorEntries(res.body) : undefined;
    if (method === "HEAD") res.body.dump().catch(() => {});
    const challenge = status === 401 ? header(res.headers, "www-authenticate") : undefined;
    const retryAfter = header(res.headers, "retry-after");
    throw new UpstreamError("STATUS", this.config.name, `upstream answered ${status}`, {
      status,
      ...(entries ? { entries } : {}),
      ...(challenge ? { challenge } : {}),
      ...(retryAfter ? { retryAfter } : {}),
    });
  }

  async #send(opts: SendOptions): Promise<Dispatcher.ResponseData> {
    const request = upstreamKindOf(opts.path, false);
    return withClientSpan(
      this.#tracer,
      `upstream ${opts.method} ${request}`,
      {
        "pullgate.upstream": this.config.name,
        "pullgate.upstream.request": request,
        "pullgate.upstream.pool": opts.lookup ? "lookup" : (opts.pool ?? "api"),
        "http.request.method": opts.method,
        // The path only: a query (tags' n/last, referrers' artifactType) is never recorded.
        "url.path": opts.path.split("?", 1)[0] ?? "",
        ...serverOf(this.config.url),
      },
      async (span) => {
        const res = await this.#sendWithAuth(opts);
        span.setAttribute("http.response.status_code", res.statusCode);
        return res;
      },
    );
  }

  /** One upstream exchange in the metrics: time to headers, and its status class ("error": no answer). */
  #exchanged(opts: SendOptions | "token", started: number, status: number | undefined): void {
    const upstream = this.config.name;
    const kind = opts === "token" ? "token" : upstreamKindOf(opts.path, opts.lookup);
    this.#metrics.upstreamSeconds.observe({ upstream, kind }, (performance.now() - started) / 1000);
    this.#metrics.upstreamResponses.inc({
      upstream,
      kind,
      status_class: status ? statusClass(status) : "error",
    });
  }

  /** A body read that failed: the exchange's total deadline is a timeout, not the client leaving. */
  #bodyError(err: unknown, res: object, signal: AbortSignal | undefined): UpstreamError {
    const deadline = this.#deadlines.get(res) ?? this.#deadlines.get((res as { body?: object }).body ?? {});
    if (deadline?.aborted && !signal?.aborted) return this.#deadlineError();
    return toUpstreamError(err, this.config.name, signal);
  }

  #deadlineError(): UpstreamError {
    return new UpstreamError("TIMEOUT", this.config.name, "upstream exchange exceeded its total deadline");
  }

  async #sendWithAuth(opts: SendOptions): Promise<Dispatcher.ResponseData> {
    // Every exchange has a total deadline (headers and body), besides undici's idle timeouts: an
    // upstream dripping bytes just under the idle timeout cannot hold a client forever.
    const totalMs = opts.pool === "blob" ? this.config.timeouts.blobTotalMs : this.config.timeouts.totalMs;
    const deadline = AbortSignal.timeout(totalMs);
    const signal = opts.signal ? AbortSignal.any([opts.signal, deadline]) : deadline;
    const sent = { ...opts, signal };
    try {
      const res = await this.#sendAuthorized(sent);
      this.#deadlines.set(res, deadline);
      this.#deadlines.set(res.body, deadline);
      return res;
    } catch (err) {
      if (deadline.aborted && !opts.signal?.aborted) throw this.#deadlineError();
      throw err;
    }
  }

  async #sendAuthorized(opts: SendOptions): Promise<Dispatcher.ResponseData> {
    const clientAuth = opts.clientAuthorization;
    const usesOwnAuth = !clientAuth;
    // The client span's trace context (traceparent, tracestate) while tracing: the upstream's own
    // tracing, if any, continues pullgate's trace. It never follows a redirect to another origin.
    const headers: Record<string, string> = { "user-agent": USER_AGENT, ...traceHeaders(), ...opts.headers };
    // pullgate's own: a cached token, or Basic with the current login (which may run a credential helper).
    const own = clientAuth ? undefined : await this.auth.authorization(opts.scope, opts.signal);
    if (clientAuth) headers.authorization = clientAuth;
    else if (own) headers.authorization = own;
    let { res, origin } = await this.#sendFollowing(opts, headers);
    if (res.statusCode === 401 && origin !== this.config.url) {
      // A redirect target asking for credentials: pullgate's go only to the upstream and its token
      // service, and its challenge is not relayed (a client would send its own there).
      res.body.dump().catch(() => {});
      throw new UpstreamError("BAD_RESPONSE", this.config.name, "a redirect target asked for credentials");
    }
    if (res.statusCode === 401 && usesOwnAuth) {
      // Refresh once: the cached token may have expired early, the upstream wants a new scope, or it
      // refused the login (then the login is looked at again, and a different one is tried).
      this.auth.invalidate(opts.scope);
      let answer: string | undefined;
      const started = performance.now();
      try {
        answer = await this.auth.answer(
          header(res.headers, "www-authenticate"),
          opts.scope,
          opts.signal,
          own,
        );
        this.#exchanged("token", started, 200);
      } catch (err) {
        this.#exchanged("token", started, err instanceof UpstreamError ? err.status : undefined);
        res.body.dump().catch(() => {});
        throw err;
      }
      if (answer !== undefined) {
        res.body.dump().catch(() => {});
        ({ res, origin } = await this.#sendFollowing(opts, { ...headers, authorization: answer }));
        if (res.statusCode === 401 && origin !== this.config.url) {
          res.body.dump().catch(() => {});
          throw new UpstreamError(
            "BAD_RESPONSE",
            this.config.name,
            "a redirect target asked for credentials",
          );
        }
      }
    }
    return res;
  }

  async #sendFollowing(
    opts: SendOptions,
    headers: Record<string, string>,
  ): Promise<{ res: Dispatcher.ResponseData; origin: string }> {
    let url = new URL(opts.path, this.config.url);
    let current = headers;
    const pool = opts.pool === "blob" ? this.#blobs : opts.lookup ? this.#lookups : this.#api;
    let dispatcher = pool;
    for (let hop = 0; ; hop++) {
      const res = await this.#sendOnce(opts, url, current, dispatcher);
      if (opts.followRedirects === false || !isRedirect(res.statusCode)) return { res, origin: url.origin };
      const location = header(res.headers, "location");
      if (!location) return { res, origin: url.origin };
      res.body.dump().catch(() => {});
      if (hop >= MAX_REDIRECTS)
        throw new UpstreamError("BAD_RESPONSE", this.config.name, "too many redirects");
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        throw new UpstreamError("BAD_RESPONSE", this.config.name, "upstream redirected to an invalid URL");
      }
      if (next.protocol !== "https:" && next.protocol !== "http:") {
        throw new UpstreamError("BAD_RESPONSE", this.config.name, "upstream redirected to a non-HTTP URL");
      }
      if (next.origin !== url.origin) current = forAnotherOrigin(current);
      dispatcher = this.#redirectDispatcher(next, pool);
      url = next;
    }
  }

  /**
   * Where a redirect may go: the upstream's own origin, an origin the operator listed in
   * `redirectOrigins`, or a public address. A literal internal address is refused here; a name is
   * connected through #external, whose DNS lookup refuses internal addresses (also on rebinding).
   */
  #redirectDispatcher(next: URL, pool: Dispatcher): Dispatcher {
    if (next.origin === this.config.url || this.config.redirectOrigins.includes(next.origin)) return pool;
    const literal = addressLiteral(next.hostname);
    if (literal !== undefined) {
      if (isInternalAddress(literal)) {
        throw new UpstreamError(
          "BAD_RESPONSE",
          this.config.name,
          `upstream redirected to an internal address (${next.origin}); list it in upstreams[].redirectOrigins to allow it`,
        );
      }
      return pool;
    }
    return this.#external;
  }

  async #sendOnce(
    opts: SendOptions,
    url: URL,
    headers: Record<string, string>,
    dispatcher: Dispatcher,
  ): Promise<Dispatcher.ResponseData> {
    const isRegistry = url.origin === this.config.url;
    for (let attempt = 0; ; attempt++) {
      if (isRegistry) this.#metrics.upstreamRequests.inc({ upstream: this.config.name });
      const started = performance.now();
      try {
        const res = await dispatcher.request({
          origin: url.origin,
          path: `${url.pathname}${url.search}`,
          method: opts.method,
          headers,
          signal: opts.signal ?? null,
          // undici closes the connection after every HEAD (for servers that send a body with one);
          // registries do not, and containerd resolves every pull with a HEAD: keep the connection.
          ...(opts.method === "HEAD" && isRegistry ? { reset: false } : {}),
        });
        this.#exchanged(opts, started, res.statusCode);
        return res;
      } catch (err) {
        this.#exchanged(opts, started, undefined);
        if (attempt === 0 && !opts.signal?.aborted && isRetryableConnectionError(err)) continue;
        if (isInternalRefusal(err)) {
          throw new UpstreamError(
            "BAD_RESPONSE",
            this.config.name,
            `upstream redirected to ${url.origin}, which resolves to an internal address; list it in upstreams[].redirectOrigins to allow it`,
          );
        }
        throw toUpstreamError(err, this.config.name, opts.signal);
      }
    }
  }
}

function isInternalRefusal(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e && typeof e === "object"; depth++) {
    if ((e as { code?: unknown }).code === "PULLGATE_INTERNAL_ADDRESS") return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * The headers a redirect to another origin is sent with: object storage authorizes through the signed
 * URL, so registry credentials must not leak there; nor does pullgate's trace context go to a third party.
 */
function forAnotherOrigin(headers: Record<string, string>): Record<string, string> {
  const { authorization: _credentials, traceparent: _parent, tracestate: _state, ...rest } = headers;
  return rest;
}

export function pullScope(name: string): string {
  return `repository:${name}:pull`;
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

export function header(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function contentLength(headers: Headers): number | undefined {
  const v = header(headers, "content-length");
  if (v === undefined || !/^\d{1,15}$/.test(v)) return undefined;
  return Number(v);
}

/** server.address and server.port of an upstream's URL (never its user info). */
function serverOf(url: string): Record<string, string | number> {
  try {
    const u = new URL(url);
    const port = u.port ? Number(u.port) : u.protocol === "https:" ? 443 : 80;
    return { "server.address": u.hostname.replace(/^\[|\]$/g, ""), "server.port": port };
  } catch {
    return {};
  }
}
