import { type Counter, type Histogram, Metrics } from "./metrics.ts";

export type { Counter, Histogram } from "./metrics.ts";

/**
 * Every metric pullgate serves on the admin listener's GET /metrics, declared here and nowhere else
 * (README "Metrics" lists them; src/telemetry/pullgate-metrics.test.ts checks every family renders).
 * Modules get the counters they feed (`PullgateMetrics` or a part of it) passed in; gauges read a
 * source that is attached to them (`observe`, `workerPool.observe`, `redisUp.track`) when scraped.
 *
 * Labels stay low-cardinality: kind, status class, outcome, reason (an error code), tier, upstream
 * (from config), project (folded by `projectLabel`: only configured or overridden projects) — never
 * digests or repositories.
 */
export interface PullgateMetrics {
  /** /v2 requests by kind (base, manifest, blob, tags, referrers, other) and status class (2xx…5xx). */
  readonly requests: Counter<"kind" | "status_class">;
  /** Manifest decisions by project (`projectLabel`), outcome (allow, deny, would-deny, exempt, off) and reason. */
  readonly decisions: Counter<"project" | "outcome" | "reason">;
  readonly verdictCacheHits: Counter<"tier">;
  readonly verdictCacheMisses: Counter;
  readonly manifestCacheHits: Counter;
  /** Signature lookups started upstream (one per distinct (policy, place, digest) in flight). */
  readonly signatureLookups: Counter;
  /** Upstream requests those lookups made. */
  readonly signatureLookupRequests: Counter;
  /** Decisions that joined one already in flight for the same (policy, place, digest). */
  readonly singleFlightJoins: Counter;
  /** Requests sent to an upstream registry's own origin (redirect targets not counted). */
  readonly upstreamRequests: Counter<"upstream">;
  readonly upstreamConnections: Counter<"upstream">;
  /** Upstream answers (or failures: status_class "error") by upstream, kind and status class. */
  readonly upstreamResponses: Counter<"upstream" | "kind" | "status_class">;
  /** Time to an upstream's response headers, by upstream and kind (`UpstreamKind`). */
  readonly upstreamSeconds: Histogram<"upstream" | "kind">;
  /** Blob bytes relayed to clients, by upstream. */
  readonly streamedBytes: Counter<"upstream">;
  /** Signature judgements: signer "key" or "keyless", thread "in_process" or "worker" (queue wait included). */
  readonly verificationSeconds: Histogram<"signer" | "thread">;
  /** Signature judgements run in the verification worker pool (policies with keyless identities). */
  readonly workerJudgements: Counter;
  /** Entries read back from Redis and ignored: their MAC was missing or wrong (kind: verdict, policy). */
  readonly redisRejectedEntries: Counter<"kind">;
  /** The verification worker pool's state, read when scraped. */
  readonly workerPool: { observe(source: () => WorkerPoolState): void };
  /** Redis connections by name ("cache", "policy-subscriber"): 1 while ready, else 0. */
  readonly redisUp: { track(connection: string, isUp: () => boolean): void };
  /** Attaches the sources the cache gauges read when /metrics is scraped. */
  observe(sources: GaugeSources): void;
  /** Prometheus text exposition. */
  render(): Promise<string>;
  /** The Content-Type of render()'s text. */
  readonly contentType: string;
}

export interface GaugeSources {
  manifestCacheBytes(): number;
  manifestCacheEntries(): number;
  verdictCacheEntries(): number;
  /** Per alert webhook (by its configured name): its delivery totals so far. */
  alerts?: (() => Readonly<Record<string, AlertTotals>>) | undefined;
  /** The audit file's totals so far (log.audit.to: file). */
  auditFile?: (() => Readonly<{ written: number; dropped: number; errors: number }>) | undefined;
}

/** What an alert webhook has done so far (alerts/WebhookQueueStats has these and more). */
export interface AlertTotals {
  alertsSent: number;
  dropped: number;
  alertsFailed: number;
  retries: number;
}

export interface WorkerPoolState {
  /** Tasks queued for a thread. */
  waiting: number;
  /** Tasks handed in and not yet queued or finished (on a thread). */
  running: number;
  threads: number;
  /** piscina's utilization: the share of the pool's capacity used since it started (0…1). */
  utilization: number;
}

/** The project label of every project that is neither configured nor overridden at run time. */
export const OTHER_PROJECT = "_other";

/**
 * A decision's project label: the project's name when its policy comes from `projects.<name>` in the
 * config file or from a runtime override, else `_other` (any repository's first path segment would
 * otherwise become a label value: unbounded).
 */
export function projectLabel(policy: { project: string; source: "config" | "defaults" | "runtime" }): string {
  return policy.source === "defaults" ? OTHER_PROJECT : policy.project;
}

/** 2xx, 3xx, 4xx, 5xx (anything else: "other"). */
export function statusClass(status: number): string {
  return status >= 200 && status < 600 ? `${Math.floor(status / 100)}xx` : "other";
}

/** What an upstream request was for (signature lookups are "signature", whatever they fetch). */
export type UpstreamKind =
  | "base"
  | "manifest"
  | "blob"
  | "tags"
  | "referrers"
  | "token"
  | "signature"
  | "other";

/** The kind of a registry API path (`/v2/<name>/manifests/<ref>` → manifest). */
export function upstreamKindOf(path: string, lookup: boolean | undefined): UpstreamKind {
  if (lookup) return "signature";
  if (path === "/v2/" || path === "/v2") return "base";
  if (path.includes("/manifests/")) return "manifest";
  if (path.includes("/blobs/")) return "blob";
  if (path.includes("/referrers/")) return "referrers";
  if (path.includes("/tags/list")) return "tags";
  return "other";
}

const UPSTREAM_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const VERIFICATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

export function createPullgateMetrics(): PullgateMetrics {
  const m = new Metrics();
  // Declaration order is the order of /metrics.
  const metrics = {
    requests: m.counter("pullgate_requests_total", "Proxy (/v2) requests by kind and status class.", [
      "kind",
      "status_class",
    ]),
    decisions: m.counter(
      "pullgate_decisions_total",
      "Manifest decisions by project (configured ones; others are _other), outcome and reason.",
      ["project", "outcome", "reason"],
    ),
    verdictCacheHits: m.counter("pullgate_verdict_cache_hits_total", "Verdicts answered by a cache tier.", [
      "tier",
    ]),
    verdictCacheMisses: m.counter("pullgate_verdict_cache_misses_total", "Verdicts that needed a lookup."),
    manifestCacheHits: m.counter(
      "pullgate_manifest_cache_hits_total",
      "Manifests by digest served from memory.",
    ),
    signatureLookups: m.counter("pullgate_signature_lookups_total", "Signature lookups made upstream."),
    signatureLookupRequests: m.counter(
      "pullgate_signature_lookup_requests_total",
      "Upstream requests made by signature lookups.",
    ),
    singleFlightJoins: m.counter(
      "pullgate_single_flight_joins_total",
      "Decisions that joined an identical one already in flight instead of starting their own.",
    ),
    upstreamRequests: m.counter("pullgate_upstream_requests_total", "Requests sent to upstream registries.", [
      "upstream",
    ]),
    upstreamConnections: m.counter(
      "pullgate_upstream_connections_total",
      "Connections opened to upstreams.",
      ["upstream"],
    ),
    upstreamResponses: m.counter(
      "pullgate_upstream_responses_total",
      "Upstream answers by upstream, kind and status class (error: no answer: connection failure or timeout).",
      ["upstream", "kind", "status_class"],
    ),
    upstreamSeconds: m.histogram(
      "pullgate_upstream_request_duration_seconds",
      "Time to an upstream's response headers, by upstream and kind.",
      ["upstream", "kind"],
      UPSTREAM_BUCKETS,
    ),
    streamedBytes: m.counter("pullgate_streamed_bytes_total", "Blob bytes relayed to clients, by upstream.", [
      "upstream",
    ]),
    verificationSeconds: m.histogram(
      "pullgate_verification_duration_seconds",
      "Signature judgement time by signer type (key, keyless) and thread (in_process, worker; queue wait included).",
      ["signer", "thread"],
      VERIFICATION_BUCKETS,
    ),
    workerJudgements: m.counter(
      "pullgate_worker_judgements_total",
      "Signature judgements run in the verification worker pool (policies with keyless identities).",
    ),
    redisRejectedEntries: m.counter(
      "pullgate_redis_rejected_entries_total",
      "Entries read from Redis and ignored because their MAC was missing or wrong, by kind (verdict, policy).",
      ["kind"],
    ),
  };

  let pool: (() => WorkerPoolState) | undefined;
  const poolState = () => pool?.() ?? { waiting: 0, running: 0, threads: 0, utilization: 0 };
  m.gauge(
    "pullgate_worker_pool_tasks",
    "Verification worker pool tasks by state (waiting, running).",
    ["state"],
    (g) => {
      const s = poolState();
      g.set({ state: "waiting" }, s.waiting);
      g.set({ state: "running" }, s.running);
    },
  );
  m.gauge("pullgate_worker_pool_threads", "Verification worker threads alive.", [], (g) =>
    g.set({}, poolState().threads),
  );
  m.gauge(
    "pullgate_worker_pool_utilization",
    "Share of the verification worker pool's capacity used (piscina utilization, 0..1).",
    [],
    (g) => g.set({}, poolState().utilization),
  );

  const redis = new Map<string, () => boolean>();
  m.gauge(
    "pullgate_redis_up",
    "Redis connections by name: 1 while ready for commands, else 0.",
    ["connection"],
    (g) => {
      g.reset();
      for (const [connection, isUp] of redis) g.set({ connection }, isUp() ? 1 : 0);
    },
  );

  let sources: GaugeSources | undefined;
  const cacheGauge = (name: string, help: string, read: (s: GaugeSources) => number) =>
    m.gauge(name, help, [], (g) => {
      if (sources) g.set({}, read(sources));
    });
  cacheGauge("pullgate_manifest_cache_bytes", "Bytes of manifests cached in memory.", (s) =>
    s.manifestCacheBytes(),
  );
  cacheGauge("pullgate_manifest_cache_entries", "Manifests cached in memory.", (s) =>
    s.manifestCacheEntries(),
  );
  cacheGauge("pullgate_verdict_cache_entries", "Verdicts in the in-process tier.", (s) =>
    s.verdictCacheEntries(),
  );
  const alertTotals = () => Object.entries(sources?.alerts?.() ?? {});
  m.collectedCounter("pullgate_alerts_sent_total", "Alerts delivered, by webhook.", ["webhook"], () =>
    alertTotals().map(([webhook, t]) => ({ labels: { webhook }, value: t.alertsSent })),
  );
  m.collectedCounter(
    "pullgate_alerts_dropped_total",
    "Alerts dropped, by webhook: the queue was full, or delivery was given up.",
    ["webhook", "why"],
    () =>
      alertTotals().flatMap(([webhook, t]) => [
        { labels: { webhook, why: "queue_full" }, value: t.dropped },
        { labels: { webhook, why: "given_up" }, value: t.alertsFailed },
      ]),
  );
  m.collectedCounter(
    "pullgate_alert_delivery_retries_total",
    "Alert deliveries that failed and were retried, by webhook.",
    ["webhook"],
    () => alertTotals().map(([webhook, t]) => ({ labels: { webhook }, value: t.retries })),
  );
  m.collectedCounter(
    "pullgate_audit_file_records_total",
    "Audit records written to the audit file (log.audit.to: file), or dropped when it could not keep up.",
    ["result"],
    () => {
      const t = sources?.auditFile?.();
      return t
        ? [
            { labels: { result: "written" }, value: t.written },
            { labels: { result: "dropped" }, value: t.dropped },
          ]
        : [];
    },
  );
  m.collectedCounter(
    "pullgate_audit_file_errors_total",
    "Failed opens and writes of the audit file.",
    [],
    () => {
      const t = sources?.auditFile?.();
      return t ? [{ labels: {}, value: t.errors }] : [];
    },
  );
  m.gauge("process_resident_memory_bytes", "Resident set size of the process.", [], (g) =>
    g.set({}, process.memoryUsage.rss()),
  );

  return {
    ...metrics,
    workerPool: {
      observe(source) {
        pool = source;
      },
    },
    redisUp: {
      track(connection, isUp) {
        redis.set(connection, isUp);
      },
    },
    observe(s) {
      sources = s;
    },
    render: () => m.render(),
    contentType: m.contentType,
  };
}
