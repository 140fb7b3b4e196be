import {
  type Attributes,
  context,
  INVALID_SPAN_CONTEXT,
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
} as const;

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
