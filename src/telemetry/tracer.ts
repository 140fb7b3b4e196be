import {
  type Attributes,
  context,
  INVALID_SPAN_CONTEXT,
  propagation,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from "@opentelemetry/api";

export const TRACER_NAME = "pullgate";

/**
 * Span attribute names: the semantic conventions' where they exist, pullgate's own otherwise. Never
 * a secret (Authorization, tokens, webhook URLs) and never a query string.
 */
export const SPAN_ATTR = {
  method: "http.request.method",
  status: "http.response.status_code",
  urlPath: "url.path",
  serverAddress: "server.address",
  serverPort: "server.port",
  repository: "oci.repository",
  digest: "oci.digest",
  project: "pullgate.project",
  upstream: "pullgate.upstream",
  outcome: "pullgate.outcome",
  reason: "pullgate.reason",
  cacheTier: "pullgate.cache.tier",
  /** Body bytes a streamed response (a blob) wrote to the client. */
  responseBodySize: "http.response.body.size",
  /** A streamed body cut before its end: the client left, the upstream failed or stalled. */
  responseAborted: "pullgate.response.aborted",
  poolQueued: "pullgate.pool.queued",
  poolThreads: "pullgate.pool.threads",
  verifyStatus: "pullgate.verify.status",
} as const;

/** The W3C trace context headers, the only ones pullgate reads from a client or sends upstream. */
export interface TraceHeaders {
  traceparent?: string | undefined;
  tracestate?: string | undefined;
}

/**
 * Whether an SDK is recording (otel-sdk.ts sets it when it registers its provider). Without one the
 * span helpers below skip the API entirely: no tracer lookup, no span objects, no attribute maps on
 * the hot path of every request.
 */
let recording = false;

export function setTracingActive(active: boolean): void {
  recording = active;
  tracer = undefined;
}

export function tracingActive(): boolean {
  return recording;
}

/** The span every helper hands to `fn` while nothing records: each method is a no-op. */
const NOT_RECORDING: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

let tracer: Tracer | undefined;

/** The process tracer: a no-op until an OpenTelemetry SDK registers a provider (the API's proxy tracer follows it). */
export function createTracer(): Tracer {
  tracer ??= trace.getTracer(TRACER_NAME);
  return tracer;
}

/** The active span (a non-recording one when there is none): for attributes learned along the way. */
export function activeSpan(): Span | undefined {
  return trace.getActiveSpan();
}

/** Records a failure on a span: the error's code (never its message, which may carry URLs). */
export function recordFailure(span: Span, err: unknown): void {
  const code = (err as { code?: unknown } | undefined)?.code;
  span.setStatus({ code: SpanStatusCode.ERROR, message: typeof code === "string" ? code : "error" });
}

/** Runs `fn` in an active span of the process tracer (an internal span unless `kind` says otherwise). */
export async function withSpan<T>(
  name: string,
  attributes: Attributes,
  fn: (span: Span) => Promise<T>,
  kind: SpanKind = SpanKind.INTERNAL,
): Promise<T> {
  if (!recording) return fn(NOT_RECORDING);
  return inActiveSpan(createTracer(), name, { kind, attributes }, fn);
}

/** `fn` in an active span of `tracer`, ended when `fn` settles; a failure records its code. */
function inActiveSpan<T>(
  tracer: Tracer,
  name: string,
  options: { kind: SpanKind; attributes: Attributes },
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  return tracer.startActiveSpan(name, options, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      recordFailure(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

/**
 * Runs `fn` in a server span that continues the caller's trace when `headers` carry a valid W3C
 * traceparent (a malformed one is ignored: the span starts a trace of its own). The span ends when
 * `fn` settles or, when `fn` hands `endAfter` a promise (a body still streaming), when that one settles.
 */
export async function withServerSpan(
  name: string,
  attributes: Attributes,
  headers: TraceHeaders,
  fn: (span: Span, endAfter: (streaming: Promise<unknown>) => void) => Promise<void>,
): Promise<void> {
  if (!recording) return fn(NOT_RECORDING, () => {});
  const parent = propagation.extract(context.active(), headers);
  const span = createTracer().startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
  let streaming: Promise<unknown> | undefined;
  try {
    await context.with(trace.setSpan(parent, span), () =>
      fn(span, (until) => {
        streaming = until;
      }),
    );
  } catch (err) {
    recordFailure(span, err);
    span.end();
    throw err;
  }
  if (streaming) streaming.then(endSpan(span), endSpan(span));
  else span.end();
}

const endSpan = (span: Span) => () => span.end();

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

/**
 * The active span's W3C trace context as request headers (traceparent, tracestate) for a call to
 * another service; nothing else (no baggage). Empty while nothing records.
 */
export function traceHeaders(): Readonly<Record<string, string>> {
  if (!recording) return NO_HEADERS;
  const headers: Record<string, string> = {};
  propagation.inject(context.active(), headers, {
    set(carrier, key, value) {
      if (key === "traceparent" || key === "tracestate") carrier[key] = value;
    },
  });
  return headers;
}

/** withSpan for synchronous work. */
export function withSpanSync<T>(name: string, attributes: Attributes, fn: (span: Span) => T): T {
  if (!recording) return fn(NOT_RECORDING);
  return createTracer().startActiveSpan(name, { kind: SpanKind.INTERNAL, attributes }, (span) => {
    try {
      return fn(span);
    } catch (err) {
      recordFailure(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

/**
 * Captures the active context now: spans it starts later (ended by the caller) are children of the
 * span active at capture, whatever is active when they start (a task's wait, then its run).
 */
export function spanStarter(): (name: string, attributes?: Attributes) => Span {
  if (!recording) return () => NOT_RECORDING;
  const parent = context.active();
  return (name, attributes) => createTracer().startSpan(name, attributes ? { attributes } : {}, parent);
}

/** Runs `fn` in a client span; records the error code (never the message, which may carry URLs). */
export async function withClientSpan<T>(
  tracer: Tracer,
  name: string,
  attributes: Attributes,
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  if (!recording) return fn(NOT_RECORDING);
  return inActiveSpan(tracer, name, { kind: SpanKind.CLIENT, attributes }, fn);
}

export type { Span, Tracer };
export { SpanKind };
