export {
  type AdminChangeRecord,
  type AuditLog,
  type AuditOutcome,
  type AuditSink,
  createAuditLog,
  type ManifestDecisionRecord,
} from "./audit-log.ts";
export {
  createLogger,
  createMemoryLogger,
  type Logger,
  type LogLevel,
  type LogSink,
  silentLogger,
} from "./logger.ts";
export { type Labels, Metrics } from "./metrics.ts";
export {
  type Counter,
  createPullgateMetrics,
  type GaugeSources,
  type PullgateMetrics,
} from "./pullgate-metrics.ts";
export {
  AUDIT_OUTCOMES,
  isAuditOutcome,
  type RecentDecision,
  RecentDecisions,
  type RecentDecisionsFilter,
} from "./recent-decisions.ts";
export { createTracer, type Span, TRACER_NAME, type Tracer, withClientSpan } from "./tracer.ts";
