import { type Labels, Metrics } from "./metrics.ts";

/**
 * Every metric pullgate serves on the admin listener's GET /metrics, declared here and nowhere else.
 * Modules get the counters they feed (`PullgateMetrics` or a part of it) passed in; gauges read a
 * source that createDeps attaches (`observe`). Labels stay low-cardinality: outcome, tier, kind,
 * upstream (from config) — never digests or repositories.
 */
export interface Counter<L extends string = never> {
  inc(labels?: Readonly<Record<L, string>>, by?: number): void;
  /** The current value (tests and the bench). */
  value(labels?: Readonly<Record<L, string>>): number;
}

export interface PullgateMetrics {
  /** Manifest decisions by outcome (allow, deny, would-deny, exempt, off). */
  readonly decisions: Counter<"outcome">;
  readonly verdictCacheHits: Counter<"tier">;
  readonly verdictCacheMisses: Counter;
  readonly manifestCacheHits: Counter;
  /** Signature lookups started upstream (one per distinct (policy, place, digest) in flight). */
  readonly signatureLookups: Counter;
  /** Upstream requests those lookups made. */
  readonly signatureLookupRequests: Counter;
  /** Requests sent to an upstream registry's own origin (redirect targets not counted). */
  readonly upstreamRequests: Counter<"upstream">;
  readonly upstreamConnections: Counter<"upstream">;
  /** Signature judgements run in the verification worker pool (policies with keyless identities). */
  readonly workerJudgements: Counter;
  /** Entries read back from Redis and ignored: their MAC was missing or wrong (kind: verdict, policy). */
  readonly redisRejectedEntries: Counter<"kind">;
  /** Attaches the sources the gauges read when /metrics is scraped. */
  observe(sources: GaugeSources): void;
  /** Prometheus text exposition. */
  render(): string;
}

export interface GaugeSources {
  manifestCacheBytes(): number;
  manifestCacheEntries(): number;
  verdictCacheEntries(): number;
}

export function createPullgateMetrics(): PullgateMetrics {
  const registry = new Metrics();
  const counter = <L extends string = never>(name: string, help: string): Counter<L> => {
    const inc = registry.counter(name, help);
    return {
      inc: (labels, by) => inc(labels as Labels | undefined, by),
      value: (labels) => registry.value(name, labels as Labels | undefined),
    };
  };
  // Declaration order is the order of /metrics.
  const metrics = {
    decisions: counter<"outcome">("pullgate_decisions_total", "Manifest decisions by outcome."),
    verdictCacheHits: counter<"tier">(
      "pullgate_verdict_cache_hits_total",
      "Verdicts answered by a cache tier.",
    ),
    verdictCacheMisses: counter("pullgate_verdict_cache_misses_total", "Verdicts that needed a lookup."),
    manifestCacheHits: counter(
      "pullgate_manifest_cache_hits_total",
      "Manifests by digest served from memory.",
    ),
    signatureLookups: counter("pullgate_signature_lookups_total", "Signature lookups made upstream."),
    signatureLookupRequests: counter(
      "pullgate_signature_lookup_requests_total",
      "Upstream requests made by signature lookups.",
    ),
    upstreamRequests: counter<"upstream">(
      "pullgate_upstream_requests_total",
      "Requests sent to upstream registries.",
    ),
    upstreamConnections: counter<"upstream">(
      "pullgate_upstream_connections_total",
      "Connections opened to upstreams.",
    ),
    workerJudgements: counter(
      "pullgate_worker_judgements_total",
      "Signature judgements run in the verification worker pool (policies with keyless identities).",
    ),
    redisRejectedEntries: counter<"kind">(
      "pullgate_redis_rejected_entries_total",
      "Entries read from Redis and ignored because their MAC was missing or wrong, by kind (verdict, policy).",
    ),
  };
  let sources: GaugeSources | undefined;
  const gauge = (name: string, help: string, read: (s: GaugeSources) => number) =>
    registry.collect(name, help, "gauge", () => (sources ? [{ value: read(sources) }] : []));
  gauge("pullgate_manifest_cache_bytes", "Bytes of manifests cached in memory.", (s) =>
    s.manifestCacheBytes(),
  );
  gauge("pullgate_manifest_cache_entries", "Manifests cached in memory.", (s) => s.manifestCacheEntries());
  gauge("pullgate_verdict_cache_entries", "Verdicts in the in-process tier.", (s) => s.verdictCacheEntries());
  registry.collect("process_resident_memory_bytes", "Resident set size of the process.", "gauge", () => [
    { value: process.memoryUsage.rss() },
  ]);
  return {
    ...metrics,
    observe(s) {
      sources = s;
    },
    render: () => registry.render(),
  };
}
