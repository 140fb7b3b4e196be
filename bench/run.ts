/**
 * `npm run bench`: pullgate against the docker-registry it proxies, nginx and a pull-through docker-registry,
 * side by side, on this machine.
 *
 * Installs missing tools (bench/install-deps.sh), starts the servers (all on 127.0.0.1, free ports, temp dirs),
 * runs every scenario (bench/scenarios/) against its targets with interleaved runs, samples the servers' CPU
 * from /proc and pullgate's /metrics around each run, and writes bench/RESULTS.md plus
 * bench/results/<UTC timestamp>.json. Everything it started is stopped on exit, on error and on SIGINT.
 *
 * Quick checks: BENCH_DURATION_S (default 10: the run length of the timed scenarios; some cap it lower),
 * BENCH_RUNS (default 3), BENCH_SCENARIOS (comma-separated ids, e.g. warm-pull-c8,herd), BENCH_SCALE_IMAGES
 * (default 10000), BENCH_METRICS (auto | require | off, see bench/metrics.ts).
 */
import { spawn } from "node:child_process";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { availableParallelism, release, totalmem } from "node:os";
import { join, relative } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import {
  freePort,
  generateSigningKey,
  listensOn,
  type RedisServer,
  RegistryWriter,
  run,
  signLegacy,
  startRedisServer,
} from "../src/local/index.ts";
import { makeTempDir, removeDir } from "../test/support/process.ts";
import { evaluateGoals } from "./goals.ts";
import { pushSignedImages, pushUnsignedImage } from "./images.ts";
import { deltaOf, METRIC, metricsMode, missingFamilies, type Scrape, scrape } from "./metrics.ts";
import { clockTicks, processCpuTicks, systemCpuTicks } from "./proc.ts";
import {
  cpuMetrics,
  type Meta,
  readOptimizations,
  renderMarkdown,
  type ScenarioSummary,
  summarize,
  TOTAL,
} from "./report.ts";
import { readSince } from "./round-trips.ts";
import {
  CONTAINERD_ACCEPT,
  DIRECT,
  type Env,
  intEnv,
  median,
  NGINX,
  PULLGATE,
  PULLGATE_ENFORCE,
  REGISTRY_PROXY,
  type RunRecord,
  type Scenario,
  type Target,
} from "./scenario.ts";
import { scenarios } from "./scenarios/index.ts";
import {
  type NginxServer,
  type PullgateServer,
  pushBenchImage,
  REPOSITORY,
  type Server,
  startNginx,
  startPullgateProcess,
  startQuietRegistry,
  TAG,
} from "./servers.ts";
import { killActiveTools } from "./tools.ts";

const BENCH_DIR = fileURLToPath(new URL(".", import.meta.url));
const REPO_DIR = join(BENCH_DIR, "..");
const GIB = 1024 * 1024 * 1024;
const COLD_IMAGES = 200;
const COLD_PRIMERS = 20;

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

function autocannonVersion(): string {
  try {
    const require = createRequire(import.meta.url);
    return `autocannon ${(require("autocannon/package.json") as { version: string }).version}`;
  } catch {
    return "autocannon (unknown version)";
  }
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
      const key = `${rec.outcome}/${rec.tier ?? "-"}`;
      decisions[key] = (decisions[key] ?? 0) + 1;
    }
  }
  return { accessLines, decisions };
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

async function cpuTicksOf(pids: number[]): Promise<number> {
  let sum = 0;
  for (const pid of pids) sum += await processCpuTicks(pid).catch(() => 0);
  return sum;
}

type Bench = {
  registry?: Server;
  pullgate?: PullgateServer;
  enforce?: PullgateServer;
  nginx?: NginxServer;
  registryProxy?: Server;
  redis?: RedisServer;
  redisClient?: Redis;
  /** Servers started for a while by scenarios, stopped by them or on cleanup. */
  transient: Set<Server>;
  tmp?: string;
};

async function measureOnce(
  scenario: Scenario,
  target: Target,
  runIndex: number,
  env: Env,
  durationS: number,
): Promise<RunRecord> {
  await scenario.beforeRun?.(target, env, runIndex);
  const pg = target.pullgate?.();
  const logOffset = pg ? (await stat(pg.logFile)).size : undefined;
  const m0: Scrape | undefined = pg && env.metricsOn ? await env.scrape(pg) : undefined;
  const sampled = [...env.processes].map(([name, pids]) => ({ name, pids: pids() }));
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const before = await Promise.all(sampled.map((p) => cpuTicksOf(p.pids)));
  const sys0 = await systemCpuTicks();
  const m = await scenario.measure(target, durationS, env, runIndex);
  const sys1 = await systemCpuTicks();
  const after = await Promise.all(sampled.map((p) => cpuTicksOf(p.pids)));
  const wallS = (performance.now() - t0) / 1000;
  const m1 = pg && env.metricsOn ? await env.scrape(pg) : undefined;

  const cpuS: Record<string, number> = {};
  sampled.forEach((p, i) => {
    cpuS[p.name] = ((after[i] as number) - (before[i] as number)) / env.ticks;
  });
  const serversS = Object.values(cpuS).reduce((a, b) => a + b, 0);
  cpuS.client = m.clientCpuS;
  cpuS.machine = (sys1.busy - sys0.busy) / env.ticks;
  cpuS.other = Math.max(0, cpuS.machine - serversS - m.clientCpuS);

  const values = { ...m.values };
  const perUnit =
    scenario.cpu === "GiB"
      ? (s: number) => s / (m.units / GIB)
      : (s: number) => (s * 1e6) / Math.max(1, m.units);
  for (const metric of cpuMetrics(scenario, [target])) {
    const role = metric.key.slice("cpu:".length);
    if (role === TOTAL) {
      const names = Object.values(target.roles);
      values[metric.key] = perUnit(names.reduce((acc, n) => acc + (cpuS[n] ?? 0), 0));
    } else {
      const name = target.roles[role as keyof Target["roles"]];
      if (name !== undefined) values[metric.key] = perUnit(cpuS[name] ?? 0);
    }
  }
  const record: RunRecord = {
    scenario: scenario.id,
    target: target.name,
    run: runIndex,
    startedAt,
    wallS,
    units: m.units,
    durationS: m.durationS,
    values,
    cpuS,
    raw: m.raw,
  };
  if (m0 && m1) record.metrics = deltaOf(m0, m1);
  if (pg && logOffset !== undefined) {
    const seen = await logSince(pg.logFile, logOffset);
    record.accessLogLines = seen.accessLines;
    record.decisions = seen.decisions;
    if (record.accessLogLines === 0) throw new Error(`${target.name} wrote no access log lines during a run`);
  }
  await scenario.checkRun?.(target, record, env);
  return record;
}

function describe(record: RunRecord, scenario: Scenario): string {
  const parts = scenario.metrics
    .map((metric) => {
      const v = record.values[metric.key];
      return v === undefined ? "" : `${v.toFixed(metric.decimals)} ${metric.label}`;
    })
    .filter(Boolean);
  const m = record.metrics;
  const extra = m
    ? `; /metrics: ${m.lookups} lookups, ${m.upstreamRequests} upstream, ${m.manifestHits} manifest hits`
    : "";
  return `${parts.join(", ")}${extra}; other load ${(record.cpuS.other ?? 0).toFixed(2)} s`;
}

async function main(bench: Bench): Promise<void> {
  const started = new Date();
  const t0 = performance.now();
  const baseDurationS = intEnv("BENCH_DURATION_S", 10);
  const runs = intEnv("BENCH_RUNS", 3);
  const mode = metricsMode();

  log("checking tools (bench/install-deps.sh)");
  await runVisible("sh", [join(BENCH_DIR, "install-deps.sh")]);
  // pullgate runs as the container image runs it: the compiled dist/ (npm run build).
  log("building dist/ (npm run build)");
  await runVisible(process.execPath, [
    join(REPO_DIR, "node_modules", ".bin", "tsc"),
    "-p",
    join(REPO_DIR, "tsconfig.build.json"),
  ]);

  const only = process.env.BENCH_SCENARIOS?.split(",").filter(Boolean);
  const all = scenarios();
  const list = all.filter((s) => !only || only.includes(s.id));
  if (list.length === 0)
    throw new Error(
      `BENCH_SCENARIOS=${process.env.BENCH_SCENARIOS} matches none of ${all.map((s) => s.id).join(", ")}`,
    );

  bench.tmp = await makeTempDir("bench");
  const tmp = bench.tmp;
  for (const d of [
    "registry",
    "layout",
    "pullgate",
    "pullgate-enforce",
    "nginx",
    "registry-proxy",
    "redis",
    "scratch",
    "transient",
  ])
    await mkdir(join(tmp, d));
  log("starting docker-registry");
  bench.registry = await startQuietRegistry(join(tmp, "registry"));
  const registry = bench.registry;
  log("generating and pushing the bench image (200 MiB layer)");
  const image = await pushBenchImage(join(tmp, "layout"), registry.url);
  await removeDir(join(tmp, "layout")).catch(() => undefined);

  const setupT0 = performance.now();
  const key = generateSigningKey();
  await signLegacy({
    writer: new RegistryWriter(registry.url),
    repository: REPOSITORY,
    digest: image.manifestDigest,
    key,
  });
  const unsigned = await pushUnsignedImage({
    registryUrl: registry.url,
    repository: "proj/unsigned",
    tag: "v1",
    label: "unsigned",
  });
  const cold = await pushSignedImages({
    registryUrl: registry.url,
    repository: "proj/cold",
    label: "cold",
    tagPrefix: "c",
    count: COLD_IMAGES + COLD_PRIMERS,
    key,
  });
  const herdImages = await pushSignedImages({
    registryUrl: registry.url,
    repository: "proj/herd",
    label: "herd",
    count: runs + 1,
    key,
  });
  log(
    `signed the bench image and pushed ${cold.length + herdImages.length + 1} small images in ${Math.round(performance.now() - setupT0)} ms`,
  );

  log("starting redis-server");
  bench.redis = await startRedisServer({ dir: join(tmp, "redis") });
  const redis = bench.redis;
  bench.redisClient = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  const redisClient = bench.redisClient;
  await redisClient.connect();
  const redisProcessId = await redisPid(redisClient, redis.port);

  log(
    "starting pullgate (every project off), pullgate-enforce (proj: enforce), nginx, the pull-through registry",
  );
  bench.pullgate = await startPullgateProcess(join(tmp, "pullgate"), registry.url);
  const pullgate = bench.pullgate;
  const projects = {
    proj: { mode: "enforce", keys: [{ name: "bench", pem: key.publicKeyPem, transparencyLog: "optional" }] },
  };
  // A fixed port, so that a restarted pullgate-enforce keeps the target's URL.
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
  bench.nginx = await startNginx(join(tmp, "nginx"), registry.url);
  const nginx = bench.nginx;
  bench.registryProxy = await startQuietRegistry(join(tmp, "registry-proxy"), {
    proxyRemoteUrl: registry.url,
    name: REGISTRY_PROXY,
  });
  const registryProxy = bench.registryProxy;

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

  // /metrics: on when pullgate serves them with every family the bench reads.
  let metricsOn = false;
  let missing: string[] = [];
  if (mode !== "off") {
    const s = await scrape(bench.enforce.adminUrl);
    missing = s ? missingFamilies(s) : ["GET /metrics (not served)"];
    metricsOn = s !== undefined && missing.length === 0;
    if (s && missing.length > 0) {
      // Counters appear once they moved: the families the bench needs must at least be declared.
      log(`pullgate's /metrics lack: ${missing.join(", ")}`);
    }
    if (mode === "require" && !metricsOn)
      throw new Error(`BENCH_METRICS=require, but pullgate's /metrics lack ${missing.join(", ")}`);
  }
  log(`pullgate /metrics: ${metricsOn ? "used" : `not used (${missing.join(", ") || "off"})`}`);

  const processes = new Map<string, () => number[]>([
    [PULLGATE, () => [pullgate.proc.pid]],
    [
      PULLGATE_ENFORCE,
      () => {
        const e = bench.enforce;
        return e ? [e.proc.pid] : [];
      },
    ],
    ["registry", () => [registry.proc.pid]],
    ["redis", () => [redisProcessId]],
    [NGINX, () => [nginx.proc.pid, ...nginx.workerPids]],
    [REGISTRY_PROXY, () => [registryProxy.proc.pid]],
  ]);

  const targets: Env["targets"] = {
    [DIRECT]: { name: DIRECT, baseUrl: registry.url, roles: { registry: "registry" } },
    [PULLGATE_ENFORCE]: {
      name: PULLGATE_ENFORCE,
      baseUrl: enforceUrl,
      roles: { proxy: PULLGATE_ENFORCE, registry: "registry", redis: "redis" },
      pullgate: () => {
        if (!bench.enforce) throw new Error("pullgate-enforce is not running");
        return bench.enforce;
      },
    },
    [PULLGATE]: {
      name: PULLGATE,
      baseUrl: pullgate.url,
      roles: { proxy: PULLGATE, registry: "registry" },
      pullgate: () => pullgate,
    },
    [NGINX]: { name: NGINX, baseUrl: nginx.url, roles: { proxy: NGINX, registry: "registry" } },
    [REGISTRY_PROXY]: {
      name: REGISTRY_PROXY,
      baseUrl: registryProxy.url,
      roles: { proxy: REGISTRY_PROXY, registry: "registry" },
    },
  };

  const env: Env = {
    tmp,
    scratch: join(tmp, "scratch"),
    ticks: await clockTicks(),
    image,
    key,
    projects,
    registry,
    redisUrl: redis.url,
    redis: redisClient,
    targets,
    enforce: () => {
      if (!bench.enforce) throw new Error("pullgate-enforce is not running");
      return bench.enforce;
    },
    restartEnforce: async () => {
      await bench.enforce?.proc.stop();
      bench.enforce = undefined;
      await redisClient.flushall();
      const next = await startEnforce();
      bench.enforce = next;
      if (next.url !== enforceUrl) throw new Error(`pullgate-enforce came back on ${next.url}`);
    },
    startPullgate: async (name, upstreamUrl, opts = {}) => {
      const dir = join(tmp, "transient", name);
      await mkdir(dir, { recursive: true });
      const server = await startPullgateProcess(dir, upstreamUrl, {
        name,
        ...(opts.listen ? { listen: opts.listen } : {}),
        ...(opts.nodeArgs ? { nodeArgs: opts.nodeArgs } : {}),
        ...(opts.enforce ? { projects, redisUrl: redis.url } : {}),
        ...(opts.policy ? { ...opts.policy, redisUrl: redis.url } : {}),
      });
      bench.transient.add(server);
      processes.set(name, () => [server.proc.pid]);
      return server;
    },
    startRegistry: async (name, opts) => {
      const dir = join(tmp, "transient", name);
      await mkdir(dir, { recursive: true });
      const server = await startQuietRegistry(dir, { ...opts, name });
      bench.transient.add(server);
      processes.set(name, () => [server.proc.pid]);
      return server;
    },
    stop: async (server) => {
      await server.proc.stop();
      bench.transient.delete(server);
      processes.delete(server.proc.name);
    },
    processes,
    metricsOn,
    scrape: (server) => scrape(server.adminUrl),
    redisVerdicts: () => redisVerdicts(redisClient),
    sets: {
      cold: cold.slice(COLD_PRIMERS),
      primers: cold.slice(0, COLD_PRIMERS),
      herd: herdImages,
      unsigned,
    },
    facts: {},
    log,
  };

  const records: RunRecord[] = [];
  const summaries: ScenarioSummary[] = [];
  for (const scenario of list) {
    const durationS = scenario.durationS?.(baseDurationS) ?? baseDurationS;
    const sT0 = performance.now();
    log(`${scenario.id}: setting up`);
    await scenario.setup?.(env);
    const scenarioTargets = scenario.targets(env);
    for (const target of scenarioTargets) await scenario.verify?.(target, env);
    const warmupS = Math.min(scenario.warmupS ?? 0, durationS);
    if (warmupS > 0) {
      for (const target of scenarioTargets) {
        log(`${scenario.id}: warm-up ${target.name} ${warmupS} s`);
        await scenario.measure(target, warmupS, env, 0);
      }
    }
    for (let r = 1; r <= runs; r++) {
      for (const target of scenarioTargets) {
        await sleep(500); // let the previous run's connections and GC settle
        const record = await measureOnce(scenario, target, r, env, durationS);
        records.push(record);
        log(`${scenario.id} ${target.name} run ${r}/${runs}: ${describe(record, scenario)}`);
      }
    }
    await scenario.teardown?.(env);
    const mine = records.filter((rec) => rec.scenario === scenario.id);
    summaries.push(
      summarize(scenario, scenarioTargets, mine, {
        runLength: scenario.runLength(durationS),
        notes: scenario.notes?.(mine, env) ?? [],
      }),
    );
    log(`${scenario.id}: done in ${Math.round((performance.now() - sT0) / 1000)} s`);
  }

  const stamp = started
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  const resultsFile = join(BENCH_DIR, "results", `${stamp}.json`);
  const others = records.filter((r) => r.wallS > 0).map((r) => (r.cpuS.other ?? 0) / r.wallS);
  const overrides = [
    "BENCH_DURATION_S",
    "BENCH_RUNS",
    "BENCH_SCENARIOS",
    "BENCH_SCALE_IMAGES",
    "BENCH_METRICS",
  ]
    .filter((k) => process.env[k])
    .map((k) => `${k}=${process.env[k]} `)
    .join("");
  const meta: Meta = {
    date: started,
    command: `${overrides}${process.env.npm_lifecycle_event === "bench" ? "npm run bench" : "node bench/run.ts"}`,
    resultsFile: relative(REPO_DIR, resultsFile),
    durationS: baseDurationS,
    runs,
    defaults: baseDurationS === 10 && runs === 3 && !only && !process.env.BENCH_SCALE_IMAGES,
    machine: {
      cores: availableParallelism(),
      model: await cpuModel(),
      kernel: release(),
      memoryGiB: Math.round(totalmem() / GIB),
    },
    versions: {
      node: process.version,
      pullgate: await pullgateVersion(),
      registry: await firstLine("docker-registry", ["--version"]),
      nginx: nginx.version,
      redis: (await firstLine("redis-server", ["--version"])).replace(/^Redis server v=(\S+).*$/, "Redis $1"),
      autocannon: autocannonVersion(),
      wrk: (await firstLine("wrk", ["-v"])).replace(/\s*Copyright.*$/, ""),
    },
    metrics: { on: metricsOn, mode, missing },
    blobSize: image.blobSize,
    manifestSize: image.manifestBytes.length,
    otherCores: {
      median: others.length > 0 ? median(others) : 0,
      max: others.length > 0 ? Math.max(...others) : 0,
    },
    wallS: (performance.now() - t0) / 1000,
  };
  const goals = evaluateGoals(summaries, env.facts);
  const optimizations = await readOptimizations(BENCH_DIR);

  await mkdir(join(BENCH_DIR, "results"), { recursive: true });
  const targetList = Object.values(targets).map((t) => ({
    name: t.name,
    baseUrl: t.baseUrl,
    roles: t.roles,
  }));
  await writeFile(
    resultsFile,
    `${JSON.stringify(
      {
        meta,
        metricNames: METRIC,
        goals,
        optimizations: optimizations ?? [],
        targets: targetList,
        image: { ...image, manifestBytes: undefined },
        facts: env.facts,
        summaries,
        runs: records,
      },
      null,
      2,
    )}\n`,
  );
  await writeFile(join(BENCH_DIR, "RESULTS.md"), renderMarkdown(meta, summaries, goals, optimizations));
  log(`wrote bench/RESULTS.md and ${meta.resultsFile} in ${Math.round(meta.wallS)} s`);
}

async function cleanup(bench: Bench): Promise<void> {
  killActiveTools();
  bench.redisClient?.disconnect();
  await Promise.allSettled([
    bench.pullgate?.proc.stop(),
    bench.enforce?.proc.stop(),
    bench.nginx?.proc.stop(),
    bench.registryProxy?.proc.stop(),
    ...[...bench.transient].map((s) => s.proc.stop()),
  ]);
  await Promise.allSettled([bench.registry?.proc.stop(), bench.redis?.stop()]);
  if (bench.tmp) await removeDir(bench.tmp);
}

const bench: Bench = { transient: new Set() };
let interrupted = false;
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log(`${signal}: stopping`);
    // test/support/process.ts also SIGKILLs the process groups src/local started and removes its temp dirs on this
    // signal.
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
    for (const server of [
      bench.enforce,
      bench.pullgate,
      bench.registry,
      bench.nginx,
      bench.registryProxy,
      ...bench.transient,
    ]) {
      if (server) log(`${server.proc.name} log tail:\n${await server.proc.logTail(15)}`);
    }
    process.exitCode = 1;
  }
} finally {
  if (!interrupted) await cleanup(bench);
}
