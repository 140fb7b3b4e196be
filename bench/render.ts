/**
 * Re-renders bench/RESULTS.md from a results file (default: the newest in bench/results/) and the
 * current bench/optimizations.json, without measuring again: for adding an optimization's
 * before/after figures (taken from earlier runs' results) to the report of the latest run.
 * Usage: node bench/render.ts [bench/results/<UTC>.json]
 */
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { readOptimizations, renderMarkdown } from "./report.ts";

const BENCH_DIR = fileURLToPath(new URL(".", import.meta.url));
const results = join(BENCH_DIR, "results");
const file =
  process.argv[2] ??
  join(
    results,
    (await readdir(results))
      .filter((f) => f.endsWith(".json"))
      .sort()
      .at(-1) ?? "",
  );
const data = JSON.parse(await readFile(file, "utf8")) as {
  meta: Parameters<typeof renderMarkdown>[0];
  summaries: Parameters<typeof renderMarkdown>[1];
  goals: Parameters<typeof renderMarkdown>[2];
  optimizations: unknown;
};
// JSON has the run's date as a string.
data.meta.date = new Date(data.meta.date as unknown as string);
const optimizations = await readOptimizations(BENCH_DIR);
data.optimizations = optimizations ?? [];
await writeFile(file, `${JSON.stringify(data, null, 2)}\n`);
await writeFile(
  join(BENCH_DIR, "RESULTS.md"),
  renderMarkdown(data.meta, data.summaries, data.goals, optimizations),
);
process.stderr.write(`bench: re-rendered bench/RESULTS.md from ${file}\n`);
