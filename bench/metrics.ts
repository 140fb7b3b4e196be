/**
 * pullgate's Prometheus text on its admin listener (GET /metrics): scraped before and after a run, so a run
 * knows how many signature lookups, upstream requests and cache hits it caused.
 *
 * BENCH_METRICS=auto (default) uses /metrics when pullgate serves it and falls back to its logs and /proc
 * otherwise; =require fails the bench without it (for a run whose checks must all come from the metrics);
 * =off never scrapes.
 */

/** The names the bench reads. */
export const METRIC = {
  lookups: "pullgate_signature_lookups_total",
  upstreamRequests: "pullgate_upstream_requests_total",
  verdictHits: "pullgate_verdict_cache_hits_total",
  verdictMisses: "pullgate_verdict_cache_misses_total",
  manifestHits: "pullgate_manifest_cache_hits_total",
  manifestBytes: "pullgate_manifest_cache_bytes",
  verdictEntries: "pullgate_verdict_cache_entries",
  decisions: "pullgate_decisions_total",
  rss: "process_resident_memory_bytes",
} as const;

/** One scrape: every sample by `name{label="value",...}` (labels sorted), and the families declared. */
export type Scrape = { samples: Map<string, number>; families: Set<string> };

function seriesKey(name: string, labels: Record<string, string>): string {
  const keys = Object.keys(labels).sort();
  return keys.length === 0 ? name : `${name}{${keys.map((k) => `${k}="${labels[k]}"`).join(",")}}`;
}

/** Parses the Prometheus text exposition format (the subset pullgate writes: no timestamps needed). */
export function parsePrometheus(text: string): Scrape {
  const samples = new Map<string, number>();
  const families = new Set<string>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "") continue;
    if (line.startsWith("#")) {
      const m = /^# TYPE (\S+) /.exec(line);
      if (m) families.add(m[1] as string);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    const body = m[3] ?? "";
    for (const l of body.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1] as string] = (l[2] as string).replace(/\\n/g, "\n").replace(/\\(.)/g, "$1");
    }
    const value = Number(m[4]);
    if (!Number.isNaN(value)) {
      samples.set(seriesKey(m[1] as string, labels), value);
      families.add(m[1] as string);
    }
  }
  return { samples, families };
}

/** Sum of the series of `name` whose labels include `labels`. */
export function sumOf(scrape: Scrape, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const [key, value] of scrape.samples) {
    const brace = key.indexOf("{");
    const base = brace < 0 ? key : key.slice(0, brace);
    if (base !== name) continue;
    if (Object.entries(labels).every(([k, v]) => key.includes(`${k}="${v}"`))) sum += value;
  }
  return sum;
}

/** Values of `name` by one label (e.g. decisions by outcome). */
export function byLabel(scrape: Scrape, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of scrape.samples) {
    if (!key.startsWith(`${name}{`)) continue;
    const m = new RegExp(`${label}="([^"]*)"`).exec(key);
    if (m) out[m[1] as string] = (out[m[1] as string] ?? 0) + value;
  }
  return out;
}

/** GET <admin>/metrics; undefined when pullgate has none (404) or it cannot be read. */
export async function scrape(adminUrl: string): Promise<Scrape | undefined> {
  try {
    const res = await fetch(`${adminUrl}/metrics`, { signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    if (res.status !== 200) return undefined;
    return parsePrometheus(text);
  } catch {
    return undefined;
  }
}

/** What a run did, from the scrapes before and after it (counters as deltas, gauges as read after). */
export type MetricsDelta = {
  lookups: number;
  upstreamRequests: number;
  verdictHitsMemory: number;
  verdictHitsRedis: number;
  verdictMisses: number;
  manifestHits: number;
  decisions: Record<string, number>;
  /** Gauges after the run. */
  manifestCacheBytes: number;
  verdictEntries: number;
  rssBytes: number;
};

export function deltaOf(before: Scrape, after: Scrape): MetricsDelta {
  const d = (name: string, labels: Record<string, string> = {}) =>
    sumOf(after, name, labels) - sumOf(before, name, labels);
  const decisions: Record<string, number> = {};
  const b = byLabel(before, METRIC.decisions, "outcome");
  for (const [k, v] of Object.entries(byLabel(after, METRIC.decisions, "outcome"))) {
    const diff = v - (b[k] ?? 0);
    if (diff !== 0) decisions[k] = diff;
  }
  return {
    lookups: d(METRIC.lookups),
    upstreamRequests: d(METRIC.upstreamRequests),
    verdictHitsMemory: d(METRIC.verdictHits, { tier: "memory" }),
    verdictHitsRedis: d(METRIC.verdictHits, { tier: "redis" }),
    verdictMisses: d(METRIC.verdictMisses),
    manifestHits: d(METRIC.manifestHits),
    decisions,
    manifestCacheBytes: sumOf(after, METRIC.manifestBytes),
    verdictEntries: sumOf(after, METRIC.verdictEntries),
    rssBytes: sumOf(after, METRIC.rss),
  };
}

export type MetricsMode = "auto" | "require" | "off";

export function metricsMode(): MetricsMode {
  const raw = process.env.BENCH_METRICS ?? "auto";
  if (raw !== "auto" && raw !== "require" && raw !== "off")
    throw new Error(`BENCH_METRICS must be auto, require or off, got ${raw}`);
  return raw;
}

/** The families the bench needs that a scrape lacks. */
export function missingFamilies(s: Scrape): string[] {
  return Object.values(METRIC).filter((name) => !s.families.has(name));
}
