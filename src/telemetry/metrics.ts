import {
  Counter as PromCounter,
  Gauge as PromGauge,
  Histogram as PromHistogram,
  Registry,
} from "prom-client";

/**
 * The few prom-client shapes pullgate uses, on a Registry of its own (never prom-client's global
 * default, so two pullgates in one process, as the tests run them, never share a series). Labels must
 * have low cardinality: project (folded, see pullgate-metrics.ts), kind, outcome, reason, tier,
 * upstream — never digests or repositories.
 */
export type Labels = Readonly<Record<string, string>>;

export interface Counter<L extends string = never> {
  inc(labels?: Readonly<Partial<Record<L, string>>>, by?: number): void;
  /** The sum of the series whose labels include `labels` (tests and the bench; never on the hot path). */
  value(labels?: Readonly<Partial<Record<L, string>>>): number;
}

export interface Histogram<L extends string> {
  observe(labels: Readonly<Record<L, string>>, seconds: number): void;
}

export interface Gauge<L extends string = never> {
  set(labels: Readonly<Record<L, string>>, value: number): void;
}

export class Metrics {
  readonly registry = new Registry();

  /** prom-client counts; a sum per label set is kept beside it so that value() stays synchronous. */
  counter<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    const counter = new PromCounter({ name, help, labelNames, registers: [this.registry] });
    const totals = new Map<string, { labels: Labels; value: number }>();
    return {
      inc(labels, by = 1) {
        const l = (labels ?? {}) as Labels;
        if (labels) counter.inc(labels as Partial<Record<L, string>>, by);
        else counter.inc(by);
        const key = labelKey(l);
        const entry = totals.get(key);
        if (entry) entry.value += by;
        else totals.set(key, { labels: l, value: by });
      },
      value(labels) {
        const want = Object.entries(labels ?? {});
        let sum = 0;
        for (const t of totals.values()) if (want.every(([k, v]) => t.labels[k] === v)) sum += t.value;
        return sum;
      },
    };
  }

  histogram<L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    buckets: readonly number[],
  ): Histogram<L> {
    const h = new PromHistogram({
      name,
      help,
      labelNames,
      buckets: [...buckets],
      registers: [this.registry],
    });
    return { observe: (labels, seconds) => h.observe(labels as Partial<Record<L, string>>, seconds) };
  }

  /**
   * A counter kept elsewhere (a module's own running totals), read when /metrics is scraped:
   * `collect` lists each series' total so far.
   */
  collectedCounter<L extends string = never>(
    name: string,
    help: string,
    labelNames: readonly L[],
    collect: () => Array<{ labels: Readonly<Record<L, string>>; value: number }>,
  ): void {
    const c: PromCounter<L> = new PromCounter<L>({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        c.reset();
        for (const { labels, value } of collect())
          if (value >= 0) c.inc(labels as Partial<Record<L, string>>, value);
      },
    });
  }

  /** A gauge read when /metrics is scraped: `collect` sets its series (and may reset them first). */
  gauge<L extends string = never>(
    name: string,
    help: string,
    labelNames: readonly L[],
    collect: (gauge: Gauge<L> & { reset(): void }) => void,
  ): void {
    const g: PromGauge<L> = new PromGauge<L>({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        collect({
          set: (labels, value) => g.set(labels as Partial<Record<L, string>>, value),
          reset: () => g.reset(),
        });
      },
    });
  }

  /** Prometheus text exposition (prom-client's, version 0.0.4). */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

function labelKey(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}\u0000${labels[k]}`)
    .join("\u0001");
}
