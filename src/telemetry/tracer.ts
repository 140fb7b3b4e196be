import { type Span, SpanKind, SpanStatusCode, type Tracer, trace } from "@opentelemetry/api";

export const TRACER_NAME = "pullgate";

/** The process tracer: a no-op until an OpenTelemetry SDK registers a provider. */
export function createTracer(): Tracer {
  return trace.getTracer(TRACER_NAME);
}

/** Runs `fn` in a client span; records the error code (never the message, which may carry URLs). */
export async function withClientSpan<T>(
  tracer: Tracer,
  name: string,
  attributes: Record<string, string | number>,
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  return tracer.startActiveSpan(name, { kind: SpanKind.CLIENT, attributes }, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      span.setStatus({ code: SpanStatusCode.ERROR, message: typeof code === "string" ? code : "error" });
      throw err;
    } finally {
      span.end();
    }
  });
}

export type { Span, Tracer };
