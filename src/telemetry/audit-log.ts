import type { Logger } from "./logger.ts";

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

export function createAuditLog(logger: Logger, sinks: readonly AuditSink[] = []): AuditLog {
  const tell = (fn: (sink: AuditSink) => void) => {
    for (const sink of sinks) {
      try {
        fn(sink);
      } catch (err) {
        logger.log("error", "audit sink failed", { message: (err as Error).message });
      }
    }
  };
  return {
    decision(record) {
      logger.log(record.outcome === "deny" ? "warn" : "info", "audit", {
        kind: "manifest-decision",
        ...record,
      });
      tell((sink) => sink.decision?.(record));
    },
    adminChange(record) {
      logger.log("info", "audit", { kind: "admin-change", ...record });
      tell((sink) => sink.adminChange?.(record));
    },
  };
}
