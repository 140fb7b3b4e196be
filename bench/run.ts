/**
 * `npm run bench`: pullgate against the docker-registry it proxies, side by side, on this machine.
 *
 * Installs missing tools, starts a quiet docker-registry with one image (50 MiB layer) and pullgate (the CLI,
 * in its own process) in front of it, runs every scenario against every target (interleaved runs), samples
 * the CPU of both servers from /proc, and writes bench/RESULTS.md plus bench/results/<UTC timestamp>.json.
 *
 * BENCH_DURATION_S (default 10) and BENCH_RUNS (default 3) shorten it for quick checks; BENCH_SCENARIOS
 * (comma-separated scenario ids, e.g. manifest-get-cold-c1) runs only those.
 */
import { spawn } from "node:child_process";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { availableParallelism, release } from "node:os";
import { join, relative } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { freePort } from "../test/support/ports.ts";
import { makeTempDir, removeDir, run } from "../test/support/process.ts";
import { type RedisServer, startRedis } from "../test/support/redis.ts";
import { generateTestKey, RegistryWriter, signLegacy, type TestKey } from "../test/support/signer.ts";
import { sequentialGets } from "./client.ts";
import { pushSignedImages, pushSmallImage, type SmallImage } from "./images.ts";
import { clockTicks, listensOn, processCpuTicks, systemCpuTicks } from "./proc.ts";
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
import { parseAccessLog, perPull, type RoundTrips, readSince } from "./round-trips.ts";
import {
  CONTAINERD_ACCEPT,
  type ColdContext,
  DIRECT,
  PULLGATE,
  PULLGATE_ENFORCE,
  type Scenario,
  type ScenarioContext,
  scenarios,
  type Target,
} from "./scenarios.ts";
import {
  pushBenchImage,
  REPOSITORY,
  type Server,
  startPullgateProcess,
  startQuietRegistry,
  TAG,
} from "./servers.ts";
import { killActiveTools } from "./tools.ts";

const BENCH_DIR = fileURLToPath(new URL(".", import.meta.url));
const REPO_DIR = join(BENCH_DIR, "..");
const BASELINE = DIRECT;
const GIB = 1024 * 1024 * 1024;
/** Images of the cold-pull scenario: measured, and pulled before each run to warm pullgate up. */
const COLD_REPOSITORY = "proj/cold";
const COLD_IMAGES = 200;
const COLD_PRIMERS = 20;

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

/** Access lines and manifest decisions (audit lines) appended to pullgate's log since `offset`. */
async function logSince(
  file: string,
  offset: number,
): Promise<{ accessLines: number; decisions: Record<string, number> }> {
  const text = await readSince(file, offset);
  const decisions: Record<string, number> = {};
  let accessLines = 0;
  for (const line of text.split("\n")) {
    if (line.includes('"event":"access"')) accessLines++;
    else if (line.includes('"kind":"manifest-decision"')) {
      const rec = JSON.parse(line) as { outcome?: string; tier?: string };
      const key = rec.tier === undefined ? String(rec.outcome) : `${rec.outcome}/${rec.tier}`;
      decisions[key] = (decisions[key] ?? 0) + 1;
    }
  }
  return { accessLines, decisions };
}

/** What every run needs besides the scenario and the target. */
type RunEnv = {
  durationS: number;
  ctx: ScenarioContext;
  /** Sampled processes: name -> pid, read at each run (the cold scenario restarts pullgate-enforce). */
  sampled: () => Record<string, number>;
  ticks: number;
  /** The scenario's targets. */
  targets: Target[];
};

type Bench = {
  registry?: Server;
  pullgate?: Server;
  enforce?: Server;
  redis?: RedisServer;
  redisClient?: Redis;
  /** Servers started for a while (the round-trip count), stopped by whoever started them or on cleanup. */
  transient: Set<Server>;
  tmp?: string;
};

/** The sampled process that plays `role` (a CPU column) on `target`'s request path. */
function serverOf(target: Target, role: string): string {
  return target.servers?.[role] ?? role;
}

async function measureOnce(
  scenario: Scenario,
  target: Target,
  runIndex: number,
  env: RunEnv,
): Promise<RunRecord> {
  const { durationS, ctx, ticks, targets } = env;
  await scenario.beforeRun?.(target, ctx);
  const sampled = env.sampled();
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
  // A load generator in this process (the cold scenario's Node client) reports its CPU in seconds.
  const inProcessS = (m.load.raw as { clientCpuS?: number } | undefined)?.clientCpuS;
  cpuS.client = inProcessS ?? m.load.clientCpuTicks / ticks;
  cpuS.machine = (sys1.busy - sys0.busy) / ticks;
  cpuS.other = Math.max(0, cpuS.machine - sumOf(cpuS, Object.keys(sampled)) - cpuS.client);

  const values = { ...m.values };
  const perUnit =
    scenario.cpuPer === "request"
      ? (s: number) => (s * 1e6) / m.load.requests
      : (s: number) => s / (m.load.bytes / GIB);
  const servers = target.processes.map((role) => serverOf(target, role));
  for (const metric of cpuMetrics(scenario, targets)) {
    const role = metric.key.slice("cpu:".length);
    if (role === TOTAL) values[metric.key] = perUnit(sumOf(cpuS, servers));
    else if (target.processes.includes(role))
      values[metric.key] = perUnit(cpuS[serverOf(target, role)] as number);
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
    const seen = await logSince(target.accessLogFile, logOffset);
    record.accessLogLines = seen.accessLines;
    record.decisions = seen.decisions;
    if (record.accessLogLines === 0) throw new Error(`${target.name} wrote no access log lines during a run`);
  }
  await scenario.checkRun?.(target, record, ctx);
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

/** Fails unless `url` answers a manifest GET with `status`. */
async function expectStatus(url: string, status: number, what: string): Promise<void> {
  const res = await fetch(url, {
    headers: { accept: CONTAINERD_ACCEPT },
    signal: AbortSignal.timeout(30_000),
  });
  const body = await res.text();
  if (res.status !== status) {
    throw new Error(`${what}: GET ${url} answered ${res.status}, expected ${status}: ${body.slice(0, 300)}`);
  }
}

/** redis-server's pid, from INFO, checked to be the process that listens on the server's port. */
async function redisPid(client: Redis, port: number): Promise<number> {
  const info = await client.info("server");
  const pid = Number(/^process_id:(\d+)/m.exec(info)?.[1]);
  if (!Number.isInteger(pid) || !(await listensOn(pid, port))) {
    throw new Error(`cannot find the redis-server process (INFO process_id: ${pid})`);
  }
  return pid;
}

/** Verdict keys in Redis (see src/cache/redis-verdict-cache.ts). */
async function redisVerdicts(client: Redis): Promise<number> {
  let count = 0;
  let cursor = "0";
  do {
    const [next, keys] = await client.scan(cursor, "MATCH", "*verdict:*", "COUNT", 1000);
    cursor = next;
    count += keys.length;
  } while (cursor !== "0");
  return count;
}

async function main(bench: Bench): Promise<void> {
  const started = new Date();
  const t0 = performance.now();
  const durationS = intEnv("BENCH_DURATION_S", 10);
  const runs = intEnv("BENCH_RUNS", 3);
  const warmupS = Math.min(2, durationS);
  const durationOf = (s: Scenario) => Math.min(durationS, s.maxDurationS ?? durationS);

  log("checking tools (bench/install-deps.sh)");
  await runVisible("sh", [join(BENCH_DIR, "install-deps.sh")]);

  const only = process.env.BENCH_SCENARIOS?.split(",").filter(Boolean);
  const list = scenarios().filter((s) => !only || only.includes(s.id));
  if (list.length === 0)
    throw new Error(`BENCH_SCENARIOS=${process.env.BENCH_SCENARIOS} matches no scenario`);
  const estimateS =
    60 +
    list.reduce(
      (acc, s) =>
        acc + s.targets.length * (s.warmup === false ? runs * 4 : warmupS + runs * (durationOf(s) + 0.6)),
      0,
    );
  log(
    `${list.length} scenarios × 2-3 targets × ${runs} run(s) × ${durationS} s: about ${Math.max(1, Math.round(estimateS / 60))} min`,
  );

  bench.tmp = await makeTempDir("bench");
  const tmp = bench.tmp;
  const dirs = ["registry", "layout", "pullgate", "pullgate-enforce", "scratch", "count"];
  await Promise.all(dirs.map((d) => mkdir(join(tmp, d))));
  log("starting docker-registry");
  bench.registry = await startQuietRegistry(join(tmp, "registry"));
  const registry = bench.registry;
  log("generating and pushing the image (50 MiB layer)");
  const image = await pushBenchImage(join(tmp, "layout"), registry.url);
  await removeDir(join(tmp, "layout")).catch(() => undefined);

  const setupT0 = performance.now();
  const key: TestKey = generateTestKey();
  const writer = new RegistryWriter(registry.url);
  await signLegacy({ writer, repository: REPOSITORY, digest: image.manifestDigest, key });
  await pushSmallImage(writer, "proj/unsigned", "v1", "unsigned");
  log(`pushing ${COLD_IMAGES + COLD_PRIMERS} small signed images for the cold-pull scenario`);
  const coldImages = await pushSignedImages({
    registryUrl: registry.url,
    repository: COLD_REPOSITORY,
    prefix: "c",
    count: COLD_IMAGES + COLD_PRIMERS,
    key,
  });
  log(
    `signed the bench image and pushed ${coldImages.length + 1} images in ${Math.round(performance.now() - setupT0)} ms`,
  );

  log("starting redis-server");
  bench.redis = await startRedis();
  const redis = bench.redis;
  bench.redisClient = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  const redisClient = bench.redisClient;
  await redisClient.connect();
  const redisProcessId = await redisPid(redisClient, redis.port);

  log("starting pullgate (every project off) and pullgate-enforce (proj: enforce)");
  bench.pullgate = await startPullgateProcess(join(tmp, "pullgate"), registry.url);
  const pullgate = bench.pullgate;
  const projects = { proj: { mode: "enforce", keys: [{ name: "bench", pem: key.publicKeyPem }] } };
  // A fixed port, so that the cold scenario's new processes keep the target's URL.
  const enforceListen = `127.0.0.1:${await freePort()}`;
  const startEnforce = () =>
    startPullgateProcess(join(tmp, "pullgate-enforce"), registry.url, {
      name: PULLGATE_ENFORCE,
      listen: enforceListen,
      projects,
      redisUrl: redis.url,
    });
  bench.enforce = await startEnforce();
  const enforceUrl = bench.enforce.url;
  const enforceLog = bench.enforce.logFile;

  // pullgate-enforce must enforce: the signed image passes, an unsigned one in proj/ does not.
  await expectStatus(
    `${enforceUrl}/v2/${REPOSITORY}/manifests/${TAG}`,
    200,
    "signed image via pullgate-enforce",
  );
  await expectStatus(
    `${enforceUrl}/v2/${REPOSITORY}/manifests/${image.manifestDigest}`,
    200,
    "signed image by digest via pullgate-enforce",
  );
  await expectStatus(
    `${enforceUrl}/v2/proj/unsigned/manifests/v1`,
    403,
    "unsigned image via pullgate-enforce",
  );
  await expectStatus(
    `${pullgate.url}/v2/proj/unsigned/manifests/v1`,
    200,
    "unsigned image via pullgate (off)",
  );
  log("pullgate-enforce answers 200 for the signed image and 403 for the unsigned one");

  const restartEnforce = async (): Promise<void> => {
    await bench.enforce?.proc.stop();
    bench.enforce = undefined;
    await redisClient.flushall();
    const next = await startEnforce();
    bench.enforce = next;
    if (next.url !== enforceUrl) throw new Error(`pullgate-enforce came back on ${next.url}`);
  };

  const countRoundTrips = async (images: SmallImage[]): Promise<RoundTrips> => {
    const dir = join(tmp, "count");
    const counting = await startQuietRegistry(dir, {
      storageDir: join(tmp, "registry", "storage"),
      accessLog: true,
      name: "docker-registry-count",
    });
    bench.transient.add(counting);
    let proxy: Server | undefined;
    try {
      await redisClient.flushall();
      proxy = await startPullgateProcess(dir, counting.url, {
        name: "pullgate-enforce-count",
        projects,
        redisUrl: redis.url,
      });
      bench.transient.add(proxy);
      const paths = images.map((i) => `/v2/${i.repository}/manifests/${i.digest}`);
      const check = (res: { path: string; status: number }) => {
        if (res.status !== 200) throw new Error(`round-trip count: GET ${res.path} answered ${res.status}`);
      };
      const headers = { accept: CONTAINERD_ACCEPT };
      // Through pullgate-enforce-count: no pre-connect GET /v2/, which would make a request of its own.
      const offset = (await stat(counting.logFile)).size;
      const pgOffset = (await stat(proxy.logFile)).size;
      await sequentialGets({ baseUrl: proxy.url, paths, headers, check, preconnect: false });
      await sleep(300); // the registry logs a request after answering it
      const throughPullgate = parseAccessLog(await readSince(counting.logFile, offset));
      const { decisions } = await logSince(proxy.logFile, pgOffset);
      if (decisions["allow/verified"] !== images.length) {
        throw new Error(
          `round-trip count: expected ${images.length} verifications, got ${JSON.stringify(decisions)}`,
        );
      }
      const directOffset = (await stat(counting.logFile)).size;
      await sequentialGets({ baseUrl: counting.url, paths, headers, check, preconnect: false });
      await sleep(300);
      const direct = parseAccessLog(await readSince(counting.logFile, directOffset));
      const enforce = perPull(throughPullgate, images.length);
      const result: RoundTrips = {
        pulls: images.length,
        enforce,
        enforceTotal: throughPullgate.length / images.length,
        directTotal: direct.length / images.length,
      };
      log(
        `round trips per cold pull: ${result.enforceTotal.toFixed(2)} through pullgate-enforce ` +
          `(${enforce.map((k) => `${k.request} ${k.status}: ${k.perPull.toFixed(2)}`).join("; ")}), ` +
          `${result.directTotal.toFixed(2)} direct`,
      );
      return result;
    } finally {
      for (const server of [proxy, counting]) {
        if (!server) continue;
        await server.proc.stop();
        bench.transient.delete(server);
      }
    }
  };

  const cold: ColdContext = {
    images: coldImages.slice(COLD_PRIMERS),
    primers: coldImages.slice(0, COLD_PRIMERS),
    restartEnforce,
    flushRedis: async () => {
      await redisClient.flushall();
    },
    redisVerdicts: () => redisVerdicts(redisClient),
    countRoundTrips,
  };

  const allTargets: Target[] = [
    { name: BASELINE, baseUrl: registry.url, processes: ["registry"] },
    {
      name: PULLGATE,
      baseUrl: pullgate.url,
      processes: ["pullgate", "registry"],
      accessLogFile: pullgate.logFile,
    },
    {
      name: PULLGATE_ENFORCE,
      baseUrl: enforceUrl,
      processes: ["pullgate", "registry", "redis"],
      servers: { pullgate: PULLGATE_ENFORCE },
      accessLogFile: enforceLog,
    },
  ];
  const ctx: ScenarioContext = { image, dir: join(tmp, "scratch"), cold };
  const ticks = await clockTicks();
  const sampled = (): Record<string, number> => {
    const enforce = bench.enforce;
    if (!enforce) throw new Error("pullgate-enforce is not running");
    return {
      pullgate: pullgate.proc.pid,
      [PULLGATE_ENFORCE]: enforce.proc.pid,
      registry: registry.proc.pid,
      redis: redisProcessId,
    };
  };

  const records: RunRecord[] = [];
  const summaries: ScenarioSummary[] = [];
  for (const scenario of list) {
    const targets = scenario.targets.map((name) => {
      const target = allTargets.find((t) => t.name === name);
      if (!target) throw new Error(`${scenario.id}: unknown target ${name}`);
      return target;
    });
    const scenarioDurationS = durationOf(scenario);
    const env: RunEnv = { durationS: scenarioDurationS, ctx, sampled, ticks, targets };
    for (const target of targets) await scenario.verify(target, ctx);
    if (scenario.warmup !== false) {
      for (const target of targets) {
        log(`${scenario.id}: warm-up ${target.name} ${warmupS} s`);
        await scenario.measure(target, warmupS, ctx);
      }
    }
    for (let r = 1; r <= runs; r++) {
      for (const target of targets) {
        await sleep(500); // let the previous run's connections and GC settle
        const record = await measureOnce(scenario, target, r, env);
        records.push(record);
        log(`${scenario.id} ${target.name} run ${r}/${runs}: ${describe(record, scenario)}`);
      }
    }
    const mine = records.filter((rec) => rec.scenario === scenario.id);
    summaries.push(
      summarize(scenario, targets, records, BASELINE, {
        runLength: scenario.runLength ?? `${scenarioDurationS} s runs`,
        notes: scenario.notes?.(mine, ctx) ?? [],
      }),
    );
  }

  const stamp = started
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  const resultsFile = join(BENCH_DIR, "results", `${stamp}.json`);
  const others = records.map((r) => (r.cpuS.other ?? 0) / r.wallS);
  const overrides = ["BENCH_DURATION_S", "BENCH_RUNS", "BENCH_SCENARIOS"]
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
    defaults: durationS === 10 && runs === 3 && !only,
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
      redis: (await firstLine("redis-server", ["--version"])).replace(/^Redis server v=(\S+).*$/, "Redis $1"),
    },
    blobSize: image.blobSize,
    manifestSize: image.manifestBytes.length,
    otherCores: { median: median(others), max: Math.max(...others) },
    wallS: (performance.now() - t0) / 1000,
  };

  await mkdir(join(BENCH_DIR, "results"), { recursive: true });
  const coldSummary = {
    repository: COLD_REPOSITORY,
    images: cold.images.map((i) => i.digest),
    primers: cold.primers.map((i) => i.digest),
    roundTrips: cold.roundTrips,
  };
  await writeFile(
    resultsFile,
    `${JSON.stringify({ meta, targets: allTargets, image: { ...image, manifestBytes: undefined }, cold: coldSummary, summaries, runs: records }, null, 2)}\n`,
  );
  await writeFile(join(BENCH_DIR, "RESULTS.md"), renderMarkdown(meta, summaries, BASELINE));
  log(`wrote bench/RESULTS.md and ${meta.resultsFile} in ${Math.round(meta.wallS)} s`);
}

async function cleanup(bench: Bench): Promise<void> {
  killActiveTools();
  bench.redisClient?.disconnect();
  await Promise.allSettled([
    bench.pullgate?.proc.stop(),
    bench.enforce?.proc.stop(),
    ...[...bench.transient].map((s) => s.proc.stop()),
    bench.registry?.proc.stop(),
    bench.redis?.stop(),
  ]);
  if (bench.tmp) await removeDir(bench.tmp);
}

const bench: Bench = { transient: new Set() };
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
    for (const server of [bench.enforce, bench.pullgate, bench.registry, ...bench.transient]) {
      if (server) log(`${server.proc.name} log tail:\n${await server.proc.logTail(15)}`);
    }
    process.exitCode = 1;
  }
} finally {
  if (!interrupted) await cleanup(bench);
}
