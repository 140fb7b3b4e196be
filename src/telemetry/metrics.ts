/**
 * A small Prometheus text-format registry (the admin listener's GET /metrics). Labels must have low
 * cardinality: project, kind, outcome, reason, tier, upstream — never digests or repositories.
 */
export type Labels = Readonly<Record<string, string>>;

interface Family {
  help: string;
  type: "counter" | "gauge";
  values: Map<string, { labels: Labels; value: number }>;
  collect?: () => Array<{ labels?: Labels; value: number }>;
}

export class Metrics {
  readonly #families = new Map<string, Family>();

  counter(name: string, help: string): (labels?: Labels, by?: number) => void {
    const family = this.#family(name, help, "counter");
    return (labels = {}, by = 1) => {
      const key = labelKey(labels);
      const entry = family.values.get(key);
      if (entry) entry.value += by;
      else family.values.set(key, { labels, value: by });
    };
  }

  /** A gauge (or counter kept elsewhere) read when /metrics is scraped. */
  collect(
    name: string,
    help: string,
    type: "counter" | "gauge",
    collect: () => Array<{ labels?: Labels; value: number }>,
  ): void {
    this.#family(name, help, type).collect = collect;
  }

  /** The current value of a counter or collected metric (tests and the bench). */
  value(name: string, labels: Labels = {}): number {
    const family = this.#families.get(name);
    if (!family) return 0;
    if (family.collect) {
      const key = labelKey(labels);
      return family.collect().find((s) => labelKey(s.labels ?? {}) === key)?.value ?? 0;
    }
    return family.values.get(labelKey(labels))?.value ?? 0;
  }

  render(): string {
    const lines: string[] = [];
    for (const [name, f] of this.#families) {
      lines.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`);
      const samples = f.collect ? f.collect() : [...f.values.values()];
      for (const s of samples) lines.push(`${name}${formatLabels(s.labels ?? {})} ${s.value}`);
    }
    return `${lines.join("\n")}\n`;
  }

  #family(name: string, help: string, type: Family["type"]): Family {
    let f = this.#families.get(name);
    if (!f) {
      f = { help, type, values: new Map() };
      this.#families.set(name, f);
    }
    return f;
  }
}

function labelKey(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(",");
}

function formatLabels(labels: Labels): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return "";
  const parts = keys.map(
    (k) => `${k}="${String(labels[k]).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`,
  );
  return `{${parts.join(",")}}`;
}
