import { context, propagation, trace } from "@opentelemetry/api";
// Types only: the SDK modules are imported when tracing is configured, never otherwise.
import type { SpanExporter } from "@opentelemetry/sdk-trace";
import type { Logger } from "./logger.ts";
import { setTracingActive } from "./tracer.ts";

/** A started SDK: shutdown() flushes the spans still buffered and unregisters the provider. */
export interface Tracing {
  shutdown(): Promise<void>;
}

export interface TracingOptions {
  /** Tests: spans go to this exporter (each one at its end) instead of the OTLP exporter. */
  exporter?: SpanExporter;
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Whether the standard OTEL_* variables ask for traces: OTEL_SDK_DISABLED=true wins; then
 * OTEL_TRACES_EXPORTER=otlp, or an OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT,
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) unless OTEL_TRACES_EXPORTER says none.
 */
export function tracingRequested(env: Env): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true") return false;
  const exporters = exportersOf(env);
  if (exporters.includes("none")) return false;
  if (exporters.includes("otlp")) return true;
  return Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim());
}

function exportersOf(env: Env): string[] {
  return (env.OTEL_TRACES_EXPORTER ?? "")
    .split(",")
    .map((e) => e.trim().toLowerCase())
    .filter(Boolean);
}

/** The traces endpoint: the signal's own as given, else the generic one plus /v1/traces; undefined: the exporter's default. */
export function tracesEndpoint(env: Env): string | undefined {
  const own = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  if (own) return own;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  return base ? `${base.replace(/\/+$/, "")}/v1/traces` : undefined;
}

/**
 * Starts the OpenTelemetry SDK when the OTEL_* variables ask for it (see tracingRequested): a
 * tracer provider with the service's resource (OTEL_SERVICE_NAME, default "pullgate";
 * OTEL_RESOURCE_ATTRIBUTES), an OTLP/HTTP (JSON) exporter behind a batch processor, the
 * async-hooks context manager, so spans nest across awaits, and the W3C trace context propagator
 * (traceparent, tracestate; no baggage), so requests continue their caller's trace and upstream
 * calls carry theirs. Without them it loads nothing and the API stays a no-op. Call once per
 * process, on the main thread (workers never start it).
 */
export async function startTracing(
  env: Env,
  logger: Logger,
  options: TracingOptions = {},
): Promise<Tracing | undefined> {
  if (!tracingRequested(env)) return undefined;
  const unsupported = exportersOf(env).filter((e) => e !== "otlp");
  if (unsupported.length > 0)
    logger.log("warn", "tracing exporter not supported", { exporters: unsupported });
  const protocol = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL)?.trim();
  if (protocol && protocol !== "http/json")
    logger.log("warn", "tracing protocol not supported, using http/json", { protocol });

  const [sdk, { AsyncLocalStorageContextManager }, resources, { W3CTraceContextPropagator }] =
    await Promise.all([
      import("@opentelemetry/sdk-trace"),
      import("@opentelemetry/context-async-hooks"),
      import("@opentelemetry/resources"),
      import("@opentelemetry/core"),
    ]);
  const serviceName = env.OTEL_SERVICE_NAME?.trim() || "pullgate";
  const resource = resources
    .detectResources({ detectors: [resources.envDetector] })
    .merge(resources.resourceFromAttributes({ "service.name": serviceName }));

  let processor: InstanceType<typeof sdk.SimpleSpanProcessor> | InstanceType<typeof sdk.BatchSpanProcessor>;
  const endpoint = tracesEndpoint(env);
  if (options.exporter) {
    processor = new sdk.SimpleSpanProcessor({ exporter: options.exporter });
  } else {
    const { OTLPTraceExporter } = await import("@opentelemetry/exporter-trace-otlp-http");
    processor = new sdk.BatchSpanProcessor({
      exporter: new OTLPTraceExporter(endpoint ? { url: endpoint } : {}),
    });
  }
  const provider = new sdk.TracerProvider({ resource, spanProcessors: [processor] });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  const contextSet = context.setGlobalContextManager(contextManager);
  if (!contextSet || !trace.setGlobalTracerProvider(provider)) {
    // Already registered (a second start in one process): keep the first, drop this one.
    if (contextSet) context.disable();
    contextManager.disable();
    await provider.shutdown().catch(() => {});
    logger.log("warn", "tracing already started");
    return undefined;
  }
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  setTracingActive(true);
  logger.log("info", "tracing started", {
    service: serviceName,
    exporter: options.exporter ? "custom" : "otlp",
    ...(endpoint && !options.exporter ? { endpoint: withoutSecrets(endpoint) } : {}),
  });
  let stopped: Promise<void> | undefined;
  return {
    shutdown() {
      stopped ??= (async () => {
        setTracingActive(false);
        try {
          await provider.shutdown();
        } catch (err) {
          logger.log("warn", "tracing shutdown failed", {
            cause: { code: (err as { code?: unknown }).code },
          });
        } finally {
          trace.disable();
          propagation.disable();
          context.disable();
        }
      })();
      return stopped;
    },
  };
}

/** An endpoint as it may be logged: no user info, no query. */
function withoutSecrets(endpoint: string): string {
  try {
    const u = new URL(endpoint);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return "(invalid URL)";
  }
}
