export { type AuditFile, type AuditFileOptions, type AuditFileStats, createAuditFile } from "./audit-file.ts";
export {
  type AdminChangeRecord,
  AUDIT_SCHEMA,
  type AuditLog,
  type AuditLogOptions,
  type AuditOutcome,
  type AuditOutput,
  type AuditSink,
  createAuditLog,
  type ManifestDecisionRecord,
} from "./audit-log.ts";
export {
  createLogger,
  createMemoryLogger,
  errorCause,
  formatText,
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormat,
  type Logger,
  type LoggerOptions,
  type LogLevel,
  type LogSink,
  silentLogger,
} from "./logger.ts";
export { type Labels, Metrics } from "./metrics.ts";
export { startTracing, type Tracing, tracingRequested } from "./otel-sdk.ts";
export {
  type Counter,
  createPullgateMetrics,
  type GaugeSources,
  OTHER_PROJECT,
  type PullgateMetrics,
} from "./pullgate-metrics.ts";
export {
  AUDIT_OUTCOMES,
  isAuditOutcome,
  type RecentDecision,
  RecentDecisions,
  type RecentDecisionsFilter,
} from "./recent-decisions.ts";
export {
  activeSpan,
  createTracer,
  recordFailure,
  SPAN_ATTR,
  type Span,
  SpanKind,
  setTracingActive,
  spanStarter,
  TRACER_NAME,
  type TraceHeaders,
  type Tracer,
  traceHeaders,
  tracingActive,
  withClientSpan,
  withServerSpan,
  withSpan,
  withSpanSync,
} from "./tracer.ts";
