/**
 * `npm run bench`: pullgate against the docker-registry it proxies, side by side, on this machine.
 *
 * Installs missing tools, starts a quiet docker-registry with one image (50 MiB layer) and pullgate (the CLI,
 * in its own process) in front of it, runs every scenario against every target (interleaved runs), samples
 * the CPU of both servers from /proc, and writes bench/RESULTS.md plus bench/results/<UTC timestamp>.json.
 *
 * BENCH_DURATION_S (default 10) and BENCH_RUNS (default 3) shorten it for quick checks.
 */
import { spawn } from "node:child_process";
import { mkdir, open, readFile, stat, writeFile } from "node:fs/promises";
import { availableParallelism, release } from "node:os";
import { join, relative } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { makeTempDir, removeDir, run } from "../test/support/process.ts";
import { clockTicks, processCpuTicks, systemCpuTicks } from "./proc.ts";
import {
  cpuMetrics,
  type Meta,
  median,
  type RunRecord,
  renderMarkdown,
  type ScenarioSummary,
  summarize,
  TOTAL,
} from "./report.ts";
import { type Scenario, type ScenarioContext, scenarios, type Target } from "./scenarios.ts";
import { pushBenchImage, type Server, startPullgateProcess, startQuietRegistry } from "./servers.ts";
import { killActiveTools } from "./tools.ts";

const BENCH_DIR = fileURLToPath(new URL(".", import.meta.url));
const REPO_DIR = join(BENCH_DIR, "..");
const BASELINE = "direct";
const GIB = 1024 * 1024 * 1024;

function intEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < 1)
    throw new Error(`${name} must be a positive integer, got ${raw}`);
  return Number(raw);
}

function log(message: string): void {
  process.stderr.write(`bench: ${message}\n`);
}

/** Runs a command with inherited stdio (the apt output stays visible); throws on a non-zero exit. */
function runVisible(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "inherit", "inherit"] });
    child.once("error", reject);
    child.once("exit", (code, signal) =>
      code === 0
        ? resolve()
        : reject(new Error(`${command} ${args.join(" ")} exited with ${code ?? signal}`)),
    );
  });
}

async function firstLine(command: string, args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run(command, args, { timeoutMs: 10_000 });
    return (stdout.trim() || stderr.trim()).split("\n", 1)[0] ?? "unknown";
  } catch {
    return "unknown";
  }
}

async function cpuModel(): Promise<string> {
  const info = await readFile("/proc/cpuinfo", "utf8");
  return /^model name\s*:\s*(.+)$/m.exec(info)?.[1]?.trim() ?? "unknown CPU";
}

async function pullgateVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(join(REPO_DIR, "package.json"), "utf8")) as { version: string };
  const rev = await run("git", ["rev-parse", "--short", "HEAD"], { cwd: REPO_DIR }).catch(() => undefined);
  if (rev?.code !== 0) return pkg.version;
  const dirty = await run("git", ["status", "--porcelain", "--untracked-files=no", "--", "src", "bin"], {
    cwd: REPO_DIR,
  });
  return `${pkg.version} @ ${rev.stdout.trim()}${dirty.stdout.trim() ? " + uncommitted changes" : ""}`;
}

/** "access" lines appended to pullgate's log since `offset`. */
async function accessLinesSince(file: string, offset: number): Promise<number> {
  const fh = await open(file, "r");
  try {
    const { size } = await fh.stat();
    const buf = Buffer.alloc(size - offset);
    await fh.read(buf, 0, buf.length, offset);
    return buf.toString("utf8").split('"event":"access"').length - 1;
  } finally {
    await fh.close();
  }
}

/** What every run needs besides the scenario and the target. */
type RunEnv = {
  durationS: number;
  ctx: ScenarioContext;
  /** Sampled processes: name -> pid. */
  sampled: Record<string, number>;
  ticks: number;
  targets: Target[];
};

type Bench = {
  registry?: Server;
  pullgate?: Server;
  tmp?: string;
};

async function measureOnce(
  scenario: Scenario,
  target: Target,
  runIndex: number,
  env: RunEnv,
): Promise<RunRecord> {
  const { durationS, ctx, sampled, ticks, targets } = env;
  const logOffset = target.accessLogFile ? (await stat(target.accessLogFile)).size : undefined;
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const before = await Promise.all(Object.values(sampled).map(processCpuTicks));
  const sys0 = await systemCpuTicks();
  const m = await scenario.measure(target, durationS, ctx);
  const sys1 = await systemCpuTicks();
  const after = await Promise.all(Object.values(sampled).map(processCpuTicks));
  const wallS = (performance.now() - t0) / 1000;

  const cpuS: Record<string, number> = {};
  Object.keys(sampled).forEach((name, i) => {
    cpuS[name] = ((after[i] as number) - (before[i] as number)) / ticks;
  });
  cpuS.client = m.load.clientCpuTicks / ticks;
  cpuS.machine = (sys1.busy - sys0.busy) / ticks;
  cpuS.other = Math.max(0, cpuS.machine - sumOf(cpuS, Object.keys(sampled)) - cpuS.client);

  const values = { ...m.values };
  const perUnit =
    scenario.cpuPer === "request"
      ? (s: number) => (s * 1e6) / m.load.requests
      : (s: number) => s / (m.load.bytes / GIB);
  for (const metric of cpuMetrics(scenario, targets)) {
    const name = metric.key.slice("cpu:".length);
    if (name === TOTAL) values[metric.key] = perUnit(sumOf(cpuS, target.processes));
    else if (target.processes.includes(name)) values[metric.key] = perUnit(cpuS[name] as number);
  }
  const record: RunRecord = {
    scenario: scenario.id,
    target: target.name,
    run: runIndex,
    startedAt,
    wallS,
    requests: m.load.requests,
    bytes: m.load.bytes,
    durationS: m.load.durationS,
    values,
    cpuS,
    load: m.load.raw,
  };
  if (target.accessLogFile && logOffset !== undefined) {
    record.accessLogLines = await accessLinesSince(target.accessLogFile, logOffset);
    if (record.accessLogLines === 0) throw new Error("pullgate wrote no access log lines during a run");
  }
  return record;
}

function sumOf(values: Record<string, number>, keys: string[]): number {
  return keys.reduce((acc, k) => acc + (values[k] ?? 0), 0);
}

function describe(record: RunRecord, scenario: Scenario): string {
  const parts = scenario.metrics.map((metric) => {
    const v = record.values[metric.key];
    return v === undefined ? "" : `${v.toFixed(metric.decimals)} ${metric.label}`;
  });
  const cpu = Object.entries(record.values)
    .filter(([k]) => k.startsWith("cpu:") && k !== `cpu:${TOTAL}`)
    .map(([k, v]) => `${k.slice(4)} ${v.toFixed(scenario.cpuPer === "request" ? 0 : 2)}`);
  const unit = scenario.cpuPer === "request" ? "µs/req" : "s/GiB";
  return `${parts.join(", ")}; CPU ${unit}: ${cpu.join(", ")}; other load ${(record.cpuS.other ?? 0).toFixed(2)} s`;
}

async function main(bench: Bench): Promise<void> {
  const started = new Date();
  const t0 = performance.now();
  const durationS = intEnv("BENCH_DURATION_S", 10);
  const runs = intEnv("BENCH_RUNS", 3);
  const warmupS = Math.min(2, durationS);

  log("checking tools (bench/install-deps.sh)");
  await runVisible("sh", [join(BENCH_DIR, "install-deps.sh")]);

  const list = scenarios();
  const estimateS = 20 + list.length * 2 * (warmupS + runs * (durationS + 0.6));
  log(
    `${list.length} scenarios × 2 targets × ${runs} run(s) × ${durationS} s: about ${Math.max(1, Math.round(estimateS / 60))} min`,
  );

  bench.tmp = await makeTempDir("bench");
  const tmp = bench.tmp;
  await Promise.all(["registry", "layout", "pullgate", "scratch"].map((d) => mkdir(join(tmp, d))));
  log("starting docker-registry");
  bench.registry = await startQuietRegistry(join(tmp, "registry"));
  const registry = bench.registry;
  log("generating and pushing the image (50 MiB layer)");
  const image = await pushBenchImage(join(tmp, "layout"), registry.url);
  await removeDir(join(tmp, "layout")).catch(() => undefined);
  log("starting pullgate");
  bench.pullgate = await startPullgateProcess(join(tmp, "pullgate"), registry.url);
  const pullgate = bench.pullgate;

  const targets: Target[] = [
    { name: BASELINE, baseUrl: registry.url, processes: ["registry"] },
    {
      name: "pullgate",
      baseUrl: pullgate.url,
      processes: ["pullgate", "registry"],
      accessLogFile: pullgate.logFile,
    },
  ];
  const ctx: ScenarioContext = { image, dir: join(tmp, "scratch") };
  const env: RunEnv = {
    durationS,
    ctx,
    sampled: { pullgate: pullgate.proc.pid, registry: registry.proc.pid },
    ticks: await clockTicks(),
    targets,
  };

  const records: RunRecord[] = [];
  const summaries: ScenarioSummary[] = [];
  for (const scenario of list) {
    for (const target of targets) await scenario.verify(target, ctx);
    for (const target of targets) {
      log(`${scenario.id}: warm-up ${target.name} ${warmupS} s`);
      await scenario.measure(target, warmupS, ctx);
    }
    for (let r = 1; r <= runs; r++) {
      for (const target of targets) {
        await sleep(500); // let the previous run's connections and GC settle
        const record = await measureOnce(scenario, target, r, env);
        records.push(record);
        log(`${scenario.id} ${target.name} run ${r}/${runs}: ${describe(record, scenario)}`);
      }
    }
    summaries.push(summarize(scenario, targets, records, BASELINE));
  }

  const stamp = started
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  const resultsFile = join(BENCH_DIR, "results", `${stamp}.json`);
  const others = records.map((r) => (r.cpuS.other ?? 0) / r.wallS);
  const overrides = ["BENCH_DURATION_S", "BENCH_RUNS"]
    .filter((k) => process.env[k])
    .map((k) => `${k}=${process.env[k]} `)
    .join("");
  const meta: Meta = {
    date: started,
    command: `${overrides}${process.env.npm_lifecycle_event === "bench" ? "npm run bench" : "node bench/run.ts"}`,
    resultsFile: relative(REPO_DIR, resultsFile),
    durationS,
    runs,
    warmupS,
    defaults: durationS === 10 && runs === 3,
    machine: {
      cores: availableParallelism(),
      model: await cpuModel(),
      kernel: release(),
      node: process.version,
    },
    versions: {
      registry: await firstLine("docker-registry", ["--version"]),
      pullgate: await pullgateVersion(),
      wrk: (await firstLine("wrk", ["-v"])).replace(/\s*Copyright.*$/, ""),
      ab: (await firstLine("ab", ["-V"])).replace(/^This is /, "").replace(/,? <\$Revision.*$/, ""),
    },
    blobSize: image.blobSize,
    manifestSize: image.manifestBytes.length,
    otherCores: { median: median(others), max: Math.max(...others) },
    wallS: (performance.now() - t0) / 1000,
  };

  await mkdir(join(BENCH_DIR, "results"), { recursive: true });
  await writeFile(
    resultsFile,
    `${JSON.stringify({ meta, targets, image: { ...image, manifestBytes: undefined }, summaries, runs: records }, null, 2)}\n`,
  );
  await writeFile(join(BENCH_DIR, "RESULTS.md"), renderMarkdown(meta, summaries, BASELINE));
  log(`wrote bench/RESULTS.md and ${meta.resultsFile} in ${Math.round(meta.wallS)} s`);
}

async function cleanup(bench: Bench): Promise<void> {
  killActiveTools();
  await Promise.allSettled([bench.pullgate?.proc.stop(), bench.registry?.proc.stop()]);
  if (bench.tmp) await removeDir(bench.tmp);
}

const bench: Bench = {};
let interrupted = false;
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log(`${signal}: stopping`);
    // test/support/process.ts also SIGKILLs its process groups and removes its temp dirs on this signal.
    const forced = setTimeout(() => process.exit(130), 8_000);
    forced.unref();
    void cleanup(bench).finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
  });
}

try {
  await main(bench);
} catch (err) {
  if (!interrupted) {
    log(`failed: ${(err as Error).stack ?? err}`);
    for (const server of [bench.pullgate, bench.registry]) {
      if (server) log(`${server.proc.name} log tail:\n${await server.proc.logTail(15)}`);
    }
    process.exitCode = 1;
  }
} finally {
  if (!interrupted) await cleanup(bench);
}
