import { errorCause, type Logger } from "./logger.ts";

/** On every audit record; a new value only for a change that breaks readers (docs/audit.schema.json). */
export const AUDIT_SCHEMA = "pullgate.audit/v1";

export type AuditOutcome = "allow" | "deny" | "would-deny" | "exempt" | "off";

export interface ManifestDecisionRecord {
  project: string;
  repository: string;
  upstream: string;
  reference: string;
  digest: string;
  method: string;
  mode: string;
  outcome: AuditOutcome;
  reason?: string | undefined;
  /** What the reason is about, when it needs words (AMBIGUOUS_MANIFEST: what is ambiguous). */
  detail?: string | undefined;
  /** How an allow was reached: signature, index (listed by a verified index), signature-artifact. */
  via?: string | undefined;
  key?: string | undefined;
  keyFingerprint?: string | undefined;
  /** Who answered: memory, redis, verified (a fresh lookup), content (decided by the manifest itself). */
  tier?: string | undefined;
  /** A denial from the verdict cache: until when it holds (ISO 8601). */
  cachedUntil?: string | undefined;
  durationMs: number;
}

export interface AdminChangeRecord {
  actor: string;
  /** The admin role that allowed the change (write, write:<project>). */
  role?: string;
  action: string;
  target: string;
  before?: unknown;
  after?: unknown;
}

/** One JSON line per manifest decision and per admin change (event "audit"). */
export interface AuditLog {
  decision(record: ManifestDecisionRecord): void;
  adminChange(record: AdminChangeRecord): void;
}

/**
 * Who else hears of each record besides the log (alerts, the console's latest decisions). A sink is
 * called synchronously on the request path: it must only queue (bounded) and never throw.
 */
export interface AuditSink {
  decision?(record: ManifestDecisionRecord): void;
  adminChange?(record: AdminChangeRecord): void;
}

/** Where complete audit records go instead of the log (an audit file). Must only queue, never throw. */
export interface AuditOutput {
  write(record: Record<string, unknown>): void;
}

export interface AuditLogOptions {
  /** Default: the log's stdout (as JSON lines whatever the log format), or logger.log for loggers that keep records. */
  output?: AuditOutput | undefined;
  now?: () => Date;
}

/**
 * Every record is `{time, level, event: "audit", schema: "pullgate.audit/v1", kind, ...fields}`
 * (docs/audit.schema.json). Audit records are written whatever `log.level` is.
 */
export function createAuditLog(
  logger: Logger,
  sinks: readonly AuditSink[] = [],
  opts: AuditLogOptions = {},
): AuditLog {
  const now = opts.now ?? (() => new Date());
  const tell = (fn: (sink: AuditSink) => void) => {
    for (const sink of sinks) {
      try {
        fn(sink);
      } catch (err) {
        logger.log("error", "audit sink failed", { cause: errorCause(err) });
      }
    }
  };
  const emit = (level: "info" | "warn", fields: Record<string, unknown>) => {
    const body = { schema: AUDIT_SCHEMA, ...fields };
    const full = () => ({ time: now().toISOString(), level, event: "audit", ...body });
    try {
      if (opts.output) opts.output.write(full());
      else if (logger.writeJsonLine) logger.writeJsonLine(full());
      else logger.log(level, "audit", body);
    } catch (err) {
      // A record that cannot even be serialized (a cycle in before/after) must not fail the request.
      logger.log("error", "audit record not written", { kind: fields.kind, cause: errorCause(err) });
    }
  };
  return {
    decision(record) {
      emit(record.outcome === "deny" ? "warn" : "info", { kind: "manifest-decision", ...record });
      tell((sink) => sink.decision?.(record));
    },
    adminChange(record) {
      emit("info", { kind: "admin-change", ...record });
      tell((sink) => sink.adminChange?.(record));
    },
  };
}
