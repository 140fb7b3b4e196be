/**
 * `npm run soak`: pullgate under mixed load for SOAK_SECONDS (default 600), with faults it must ride out.
 *
 * Starts a real docker-registry, a redis-server (AOF on, so a restart keeps verdicts and runtime policies, as
 * the Kubernetes deployment runs it) and pullgate as a child process (`node bin/pullgate.js serve --config …`,
 * from the sources; SOAK_ENTRY=dist runs the compiled dist/ as the image does), all on 127.0.0.1. Pushes signed
 * and unsigned images, then runs from this process, at most 16 requests at a time, every loop bounded by the
 * run's end and every request by a 30 s timeout:
 *  - warm pulls: HEAD by tag + GET by digest of signed images (cached verdicts);
 *  - cold pulls: an image pushed during the run (signed or unsigned), HEAD by tag + GET by digest;
 *  - blob downloads (2 MiB, hashed);
 *  - denied pulls of unsigned images in the enforced project `proj`;
 *  - two slow readers, reading the 2 MiB blob at 64 KiB/s;
 *  - admin toggles of project `toggle` between enforce and audit (PUT /admin/v1/projects/toggle/policy), and
 *    pulls of its unsigned image judged against the mode in force;
 *  - Redis stopped and started again twice (same port, same dir), at 1/3 and 2/3 of the run
 *    (SOAK_REDIS_RESTARTS sets how many, 0 for none).
 * Every SOAK_INTERVAL_SECONDS (default 60) it prints the requests by outcome, unexpected answers, and
 * pullgate's RSS (VmRSS), open fds (/proc/<pid>/fd) and CPU. At the end it checks: no unexpected answer, no
 * denial turned into a 200 (an unsigned image never served while its project enforced), RSS flat over the second
 * half of the run (first vs last interval is reported: V8 grows its heap during the first minutes), fds flat,
 * pullgate healthy and its log free of unhandled rejections, a clean exit on SIGTERM; and writes
 * bench/results/soak-<UTC timestamp>.json and bench/RESULTS-soak.md. Exit code 1 when a check fails.
 * SOAK_KEEP=1 keeps the temp dir (logs, configs); SOAK_NODE_ARGS adds node options to pullgate.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { Agent, request } from "undici";
import {
  generateSigningKey,
  type ManagedProcess,
  ociImageManifest,
  type RedisServer,
  RegistryWriter,
  type SigningKey,
  signLegacy,
  startProcess,
  startRedisServer,
} from "../src/local/index.ts";
import { pseudoRandomBytes } from "../test/support/oci-images.ts";
import { makeTempDir, removeDir } from "../test/support/process.ts";
import { pushSignedImages, pushUnsignedImage, type SmallImage } from "./images.ts";
import { clockTicks, memoryOf, processCpuTicks, systemCpuTicks } from "./proc.ts";
import { intEnv } from "./scenario.ts";
import { listeningUrls, startQuietRegistry } from "./servers.ts";

const BENCH_DIR = fileURLToPath(new URL(".", import.meta.url));
const REPO_DIR = join(BENCH_DIR, "..");
const PULLGATE_BIN = join(REPO_DIR, "bin", "pullgate.js");
const SECONDS = intEnv("SOAK_SECONDS", 600);
const INTERVAL_S = intEnv("SOAK_INTERVAL_SECONDS", 60);
const ENTRY = process.env.SOAK_ENTRY === "dist" ? "dist" : "source";
/** Extra node options for pullgate (space-separated), e.g. SOAK_NODE_ARGS="--max-old-space-size=96". */
const NODE_ARGS = (process.env.SOAK_NODE_ARGS ?? "").split(/\s+/).filter(Boolean);
/** Redis stops + starts during the run (default 2, at 1/3 and 2/3 of it); 0 for a run without them. */
const REDIS_RESTARTS = process.env.SOAK_REDIS_RESTARTS === "0" ? 0 : intEnv("SOAK_REDIS_RESTARTS", 2);
const ADMIN_TOKEN = randomBytes(16).toString("hex");
const HMAC_KEY = randomBytes(32).toString("hex");
const REQUEST_TIMEOUT_MS = 30_000;
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const ACCEPT = `${OCI_MANIFEST}, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json`;
const BIG_BLOB_BYTES = 2 * 1024 * 1024;
const SLOW_READ_BYTES_PER_S = 64 * 1024;
/** Workers of the general mix (warm, blob, denied); with cold, toggle probe, admin and 2 slow readers: 14. */
const MIX_WORKERS = 9;
const TOGGLE_EVERY_MS = 10_000;
/** After a mode change or a Redis transition, answers are not judged for this long (pub/sub, reconnects). */
const GRACE_MS = 3_000;
const MiB = 1024 * 1024;

function log(message: string): void {
  process.stderr.write(`soak: ${message}\n`);
}

function sha256(data: Buffer | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

function timestamp(d = new Date()): string {
  return d
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
}

// ---------------------------------------------------------------------------------------------- bookkeeping

type Interval = {
  index: number;
  fromS: number;
  toS: number;
  counts: Record<string, number>;
  requests: number;
  unexpected: number;
  violations: number;
  rssMiB: number;
  fds: number;
  /** CPU seconds pullgate used in the interval, and per 1000 requests (pullgate's cost per request). */
  cpuS: number;
  cpuSPerKRequests: number;
  /** Share of the whole machine's CPU that was busy (other processes included: contention shows here). */
  machineBusy: number;
  redis: string;
};

/** RSS and fds of pullgate every SAMPLE_MS (the flatness checks use these, not only the interval ends). */
type Sample = { atS: number; rssMiB: number; fds: number };
const SAMPLE_MS = 5_000;
/** Shorter runs do not judge RSS flatness (the heap is still growing to its working size). */
const RSS_CHECK_MIN_S = 300;
const samples: Sample[] = [];

const intervals: Interval[] = [];
let current: Record<string, number> = {};
let currentUnexpected = 0;
let currentViolations = 0;
const totals: Record<string, number> = {};
let unexpectedTotal = 0;
let violationsTotal = 0;
const unexpectedSamples: string[] = [];
const violationSamples: string[] = [];

function count(outcome: string, n = 1): void {
  current[outcome] = (current[outcome] ?? 0) + n;
  totals[outcome] = (totals[outcome] ?? 0) + n;
}

function unexpected(outcome: string, detail: string): void {
  count(`${outcome} (unexpected)`);
  currentUnexpected++;
  unexpectedTotal++;
  if (unexpectedSamples.length < 50)
    unexpectedSamples.push(`${elapsedS().toFixed(1)}s ${outcome}: ${detail}`);
}

/** An unsigned image was served while its project enforced. */
function violation(outcome: string, detail: string): void {
  count(`${outcome} (VIOLATION)`);
  currentViolations++;
  violationsTotal++;
  if (violationSamples.length < 50) violationSamples.push(`${elapsedS().toFixed(1)}s ${outcome}: ${detail}`);
}

let startedAt = 0;
let endAt = 0;
const elapsedS = () => (Date.now() - startedAt) / 1000;
const running = () => Date.now() < endAt;

// -------------------------------------------------------------------------------------------------- servers

type Pullgate = { proc: ManagedProcess; url: string; adminUrl: string; logFile: string };

async function startPullgate(
  dir: string,
  registryUrl: string,
  redisUrl: string,
  key: SigningKey,
): Promise<Pullgate> {
  const pem = JSON.stringify(key.publicKeyPem);
  const configFile = join(dir, "pullgate.yaml");
  await writeFile(
    configFile,
    [
      'listen: "127.0.0.1:0"',
      `admin: { listen: "127.0.0.1:0", token: ${JSON.stringify(ADMIN_TOKEN)} }`,
      "log: { access: false }",
      "shutdown: { drainTimeoutMs: 2000 }",
      "upstreams:",
      "  - name: local",
      `    url: "${registryUrl}"`,
      "    default: true",
      `redis: { url: ${JSON.stringify(redisUrl)}, hmacKeyEnv: PULLGATE_REDIS_HMAC_KEY }`,
      "projects:",
      `  proj: { mode: enforce, keys: [{ name: release, pem: ${pem}, transparencyLog: optional }] }`,
      `  toggle: { mode: enforce, keys: [{ name: release, pem: ${pem}, transparencyLog: optional }] }`,
      "",
    ].join("\n"),
  );
  const logFile = join(dir, "pullgate.log");
  let urls: { proxy: string; admin: string } | undefined;
  const env: NodeJS.ProcessEnv = { ...process.env, PULLGATE_REDIS_HMAC_KEY: HMAC_KEY };
  if (ENTRY === "dist") env.PULLGATE_ENTRY = "dist";
  else delete env.PULLGATE_ENTRY;
  const proc = await startProcess({
    name: "pullgate",
    command: process.execPath,
    args: ["--max-semi-space-size=2", ...NODE_ARGS, PULLGATE_BIN, "serve", "--config", configFile],
    env,
    logDir: dir,
    stdoutFile: logFile,
    ready: async () => {
      urls ??= listeningUrls(await readFile(logFile, "utf8"));
      if (!urls) return false;
      const res = await fetch(`${urls.proxy}/v2/`, { signal: AbortSignal.timeout(2_000) });
      await res.body?.cancel();
      return res.status === 200;
    },
  });
  if (!urls) throw new Error("pullgate did not log its listening address");
  return { proc, url: urls.proxy, adminUrl: urls.admin, logFile };
}

async function fdCount(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length;
}

// ------------------------------------------------------------------------------------------------ the client

const dispatcher = new Agent({ connections: 16, keepAliveTimeout: 10_000, pipelining: 1 });

type Answer = { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer };

async function call(
  base: string,
  path: string,
  opts: { method?: "GET" | "HEAD" | "PUT"; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  const res = await request(`${base}${path}`, {
    dispatcher,
    method: opts.method ?? "GET",
    headers: { accept: ACCEPT, ...opts.headers },
    body: opts.body,
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body };
}

function errorCode(a: Answer): string {
  try {
    const e = (
      JSON.parse(a.body.toString("utf8")) as { errors: Array<{ code: string; detail?: { reason?: string } }> }
    ).errors[0];
    return [e?.code, e?.detail?.reason].filter(Boolean).join("/");
  } catch {
    return "";
  }
}

function describeError(err: unknown): string {
  const e = err as { code?: string; name?: string; message?: string };
  return e.code ?? e.name ?? String(err);
}

// ----------------------------------------------------------------------------------------------- the world

type World = {
  pullgate: Pullgate;
  registryUrl: string;
  key: SigningKey;
  signed: SmallImage[];
  unsigned: SmallImage[];
  big: { repository: string; digest: string; layer: string };
  toggleUnsigned: SmallImage;
};

/**
 * Redis as the soak sees it: "up", "stopping" (SIGTERM sent, it may still answer), "down" (exited) or
 * "recovering" (started again, pullgate reconnecting).
 */
let redisState: "up" | "stopping" | "down" | "recovering" = "up";
/** Project `toggle`'s mode as set through the admin API, and since when (undefined while a PUT is in flight). */
let toggleMode: "enforce" | "audit" | undefined = "enforce";
let toggleSince = 0;

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)] as T;

async function warmPull(w: World): Promise<void> {
  const image = pick(w.signed);
  const head = await call(w.pullgate.url, `/v2/${image.repository}/manifests/${image.tag}`, {
    method: "HEAD",
  });
  if (head.status !== 200 || head.headers["docker-content-digest"] !== image.digest) {
    unexpected("warm", `HEAD ${image.tag}: ${head.status} ${errorCode(head)}`);
    return;
  }
  const get = await call(w.pullgate.url, `/v2/${image.repository}/manifests/${image.digest}`);
  if (get.status !== 200 || sha256(get.body) !== image.digest) {
    unexpected("warm", `GET ${image.digest}: ${get.status} ${errorCode(get)}`);
    return;
  }
  count("warm pull ok");
}

async function blobDownload(w: World): Promise<void> {
  const res = await call(w.pullgate.url, `/v2/${w.big.repository}/blobs/${w.big.layer}`);
  if (res.status !== 200 || sha256(res.body) !== w.big.layer) {
    unexpected("blob", `${res.status} ${errorCode(res)} ${res.body.length} bytes`);
    return;
  }
  count("blob ok");
}

async function deniedPull(w: World): Promise<void> {
  const image = pick(w.unsigned);
  const ref = Math.random() < 0.5 ? (image.tag as string) : image.digest;
  const res = await call(w.pullgate.url, `/v2/${image.repository}/manifests/${ref}`);
  if (res.status === 200)
    violation("denied", `GET ${image.repository}:${ref} answered 200 in an enforced project`);
  else if (res.status === 403 && errorCode(res) === "DENIED/NO_SIGNATURE") count("denied ok");
  else unexpected("denied", `${res.status} ${errorCode(res)}`);
}

let coldCount = 0;

async function coldPull(w: World): Promise<void> {
  const i = coldCount++;
  const signed = i % 2 === 0;
  const repository = "proj/cold";
  const tag = `c${i}`;
  const label = `soak-cold-${startedAt}-${i}`;
  const image = signed
    ? (
        await pushSignedImages({
          registryUrl: w.registryUrl,
          repository,
          label,
          count: 1,
          key: w.key,
          tagPrefix: `c${i}-`,
          parallel: 1,
        })
      )[0]
    : await pushUnsignedImage({ registryUrl: w.registryUrl, repository, tag, label });
  if (!image) throw new Error("cold image not pushed");
  const head = await call(w.pullgate.url, `/v2/${repository}/manifests/${image.tag}`, { method: "HEAD" });
  if (head.status !== 200 || head.headers["docker-content-digest"] !== image.digest) {
    unexpected("cold", `HEAD ${image.tag}: ${head.status} ${errorCode(head)}`);
    return;
  }
  const get = await call(w.pullgate.url, `/v2/${repository}/manifests/${image.digest}`);
  if (signed) {
    if (get.status === 200 && sha256(get.body) === image.digest) count("cold signed ok");
    else unexpected("cold signed", `${get.status} ${errorCode(get)}`);
  } else if (get.status === 200)
    violation("cold unsigned", `GET ${image.digest} answered 200 in an enforced project`);
  else if (get.status === 403 && errorCode(get) === "DENIED/NO_SIGNATURE") count("cold unsigned denied ok");
  else unexpected("cold unsigned", `${get.status} ${errorCode(get)}`);
}

async function toggleProbe(w: World): Promise<void> {
  const mode = toggleMode;
  const since = toggleSince;
  const image = w.toggleUnsigned;
  const res = await call(w.pullgate.url, `/v2/${image.repository}/manifests/${image.tag}`);
  // Judged only when the mode was settled for the whole request (no PUT in flight, none in between).
  const settled =
    mode !== undefined && toggleMode === mode && toggleSince === since && Date.now() - since > GRACE_MS;
  if (!settled) {
    count(`toggle in transition ${res.status}`);
    return;
  }
  if (mode === "enforce") {
    if (res.status === 200) violation("toggle", `unsigned ${image.tag} answered 200 while toggle enforced`);
    else if (res.status === 403) count("toggle enforce denied ok");
    else unexpected("toggle enforce", `${res.status} ${errorCode(res)}`);
  } else if (res.status === 200) count("toggle audit served ok");
  else unexpected("toggle audit", `${res.status} ${errorCode(res)}`);
}

async function adminToggler(w: World): Promise<void> {
  while (running()) {
    await sleep(Math.min(TOGGLE_EVERY_MS, Math.max(0, endAt - Date.now())));
    if (!running()) return;
    const next = toggleMode === "audit" ? "enforce" : "audit";
    const previous = toggleMode;
    const redisBefore: string = redisState;
    toggleMode = undefined;
    let res: Answer;
    try {
      res = await call(w.pullgate.adminUrl, "/admin/v1/projects/toggle/policy", {
        method: "PUT",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ mode: next }),
      });
    } catch (err) {
      toggleMode = previous;
      toggleSince = Date.now();
      unexpected("admin", describeError(err));
      continue;
    }
    const redisSettled = redisBefore === "up" && redisState === "up";
    const redisDown = redisBefore === "down" && redisState === "down";
    if (res.status === 200) {
      toggleMode = next;
      toggleSince = Date.now();
      if (redisDown) unexpected("admin", "PUT answered 200 while Redis was stopped");
      else count("admin toggle ok");
    } else if (res.status === 503) {
      // Not stored; the mode in force is the previous one.
      toggleMode = previous;
      toggleSince = Date.now();
      if (redisSettled) unexpected("admin", "PUT answered 503 while Redis was up");
      else count("admin toggle 503 (redis unavailable) ok");
    } else {
      toggleMode = previous;
      toggleSince = Date.now();
      unexpected("admin", `PUT answered ${res.status} ${errorCode(res)}`);
    }
  }
}

/** Reads the big blob at SLOW_READ_BYTES_PER_S on its own connection; the whole blob must arrive intact. */
function slowRead(w: World): Promise<void> {
  const url = new URL(`${w.pullgate.url}/v2/${w.big.repository}/blobs/${w.big.layer}`);
  const boundMs = (BIG_BLOB_BYTES / SLOW_READ_BYTES_PER_S) * 1000 * 3 + 30_000;
  return new Promise((resolve) => {
    const hash = createHash("sha256");
    let bytes = 0;
    let done = false;
    const finish = (outcome: "ok" | "stopped" | string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearInterval(endWatch);
      if (outcome === "ok") count("slow reader ok");
      else if (outcome === "stopped") count("slow reader stopped at the end of the run");
      else unexpected("slow reader", outcome);
      resolve();
    };
    // The run's end stops a slow read in progress (it is not a failure).
    const endWatch = setInterval(() => {
      if (running()) return;
      finish("stopped");
      req.destroy();
    }, 250);
    const req = httpRequest(url, { agent: false }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        finish(`status ${res.statusCode}`);
        return;
      }
      res.on("data", (chunk: Buffer) => {
        hash.update(chunk);
        bytes += chunk.length;
        res.pause();
        setTimeout(() => res.resume(), (chunk.length / SLOW_READ_BYTES_PER_S) * 1000);
      });
      res.on("end", () => {
        const digest = `sha256:${hash.digest("hex")}`;
        finish(digest === w.big.layer ? "ok" : `wrong content (${bytes} bytes)`);
      });
      res.on("close", () => finish(`cut after ${bytes} bytes`));
    });
    const timer = setTimeout(() => {
      req.destroy();
      finish(`not done after ${boundMs} ms (${bytes} bytes)`);
    }, boundMs);
    req.on("error", (err) => finish(`error ${describeError(err)} after ${bytes} bytes`));
    req.end();
  });
}

async function loop(name: string, op: () => Promise<void>): Promise<void> {
  while (running()) {
    try {
      await op();
    } catch (err) {
      unexpected(name, describeError(err));
      await sleep(100); // do not spin on a failing setup
    }
  }
}

async function mixWorker(w: World): Promise<void> {
  await loop("mix", async () => {
    const r = Math.random();
    if (r < 0.55) await warmPull(w);
    else if (r < 0.65) await blobDownload(w);
    else await deniedPull(w);
  });
}

async function redisController(r: RedisServer): Promise<void> {
  const downMs = Math.min(15_000, Math.max(3_000, (SECONDS * 1000) / 12));
  for (let k = 1; k <= REDIS_RESTARTS; k++) {
    const at = k / (REDIS_RESTARTS + 1);
    const when = startedAt + SECONDS * 1000 * at;
    await sleep(Math.max(0, when - Date.now()));
    if (!running()) return;
    log(`stopping redis-server (${elapsedS().toFixed(0)} s)`);
    redisState = "stopping";
    await r.halt();
    redisState = "down";
    await sleep(downMs);
    log(`starting redis-server again on port ${r.port} (${elapsedS().toFixed(0)} s)`);
    await r.restart();
    redisState = "recovering";
    await sleep(GRACE_MS);
    redisState = "up";
  }
}

// ------------------------------------------------------------------------------------------------------ main

async function main(): Promise<number> {
  // A kept dir is not registered with the test support's cleanup (which removes its temp dirs on exit).
  const dir =
    process.env.SOAK_KEEP === "1"
      ? await mkdtemp(join(tmpdir(), "pullgate-soak-"))
      : await makeTempDir("soak");
  let registryProc: ManagedProcess | undefined;
  let redis: RedisServer | undefined;
  let pullgate: Pullgate | undefined;
  const cleanup = async () => {
    await pullgate?.proc.stop();
    await redis?.stop();
    await registryProc?.stop();
    await dispatcher.close().catch(() => {});
    if (process.env.SOAK_KEEP === "1") log(`kept ${dir}`);
    else await removeDir(dir);
  };
  process.once("SIGINT", () => {
    cleanup().finally(() => process.exit(130));
  });
  try {
    log(`${SECONDS} s, ${INTERVAL_S} s intervals, pullgate from ${ENTRY}; starting servers in ${dir}`);
    const registry = await startQuietRegistry(dir);
    registryProc = registry.proc;
    // AOF on: a restart on the same port and dir keeps the data.
    redis = await startRedisServer({ dir, appendOnly: true, readyTimeoutMs: 15_000 });
    const key = generateSigningKey();
    pullgate = await startPullgate(dir, registry.url, redis.url, key);
    log(`pullgate pid ${pullgate.proc.pid} at ${pullgate.url} (admin ${pullgate.adminUrl})`);

    const signed = await pushSignedImages({
      registryUrl: registry.url,
      repository: "proj/app",
      label: "soak-signed-",
      count: 8,
      key,
      tagPrefix: "s",
    });
    const unsigned: SmallImage[] = [];
    for (let i = 0; i < 3; i++) {
      unsigned.push(
        await pushUnsignedImage({
          registryUrl: registry.url,
          repository: "proj/unsigned",
          tag: `u${i}`,
          label: `soak-u${i}`,
        }),
      );
    }
    const toggleUnsigned = await pushUnsignedImage({
      registryUrl: registry.url,
      repository: "toggle/app",
      tag: "u",
      label: "soak-toggle-u",
    });
    // The blob image: one 2 MiB layer, signed.
    const writer = new RegistryWriter(registry.url);
    const layerBytes = pseudoRandomBytes("pullgate-soak", BIG_BLOB_BYTES);
    const layer = await writer.pushBlob("proj/big", layerBytes);
    const config = Buffer.from(
      JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [layer] } }),
    );
    const configDigest = await writer.pushBlob("proj/big", config);
    const manifest = ociImageManifest(
      { mediaType: "application/vnd.oci.image.config.v1+json", size: config.length, digest: configDigest },
      [{ mediaType: "application/vnd.oci.image.layer.v1.tar", size: layerBytes.length, digest: layer }],
    );
    const bigDigest = await writer.pushManifest("proj/big", "v1", manifest, OCI_MANIFEST);
    await signLegacy({ writer, repository: "proj/big", digest: bigDigest, key });
    const world: World = {
      pullgate,
      registryUrl: registry.url,
      key,
      signed,
      unsigned,
      big: { repository: "proj/big", digest: bigDigest, layer },
      toggleUnsigned,
    };
    // Warm-up: every signed image verified once (the warm pulls then find their verdicts cached).
    for (const image of [...signed, { repository: "proj/big", tag: "v1", digest: bigDigest }]) {
      const res = await call(pullgate.url, `/v2/${image.repository}/manifests/${image.tag}`);
      if (res.status !== 200) throw new Error(`warm-up of ${image.repository}:${image.tag}: ${res.status}`);
    }
    const pid = pullgate.proc.pid;
    log(`images pushed; load for ${SECONDS} s`);

    startedAt = Date.now();
    endAt = startedAt + SECONDS * 1000;
    toggleSince = startedAt;
    let intervalStart = startedAt;
    const ticks = await clockTicks();
    let cpuAtStart = await processCpuTicks(pid);
    let machineAtStart = await systemCpuTicks();
    const closeInterval = async (now: number) => {
      const mem = await memoryOf(pid).catch(() => ({ rss: Number.NaN }));
      const fds = await fdCount(pid).catch(() => Number.NaN);
      const cpu = await processCpuTicks(pid).catch(() => Number.NaN);
      const machine = await systemCpuTicks();
      const counts = current;
      const requests = Object.values(counts).reduce((a, b) => a + b, 0);
      const cpuS = (cpu - cpuAtStart) / ticks;
      const interval: Interval = {
        index: intervals.length + 1,
        fromS: Math.round((intervalStart - startedAt) / 1000),
        toS: Math.round((now - startedAt) / 1000),
        counts,
        requests,
        unexpected: currentUnexpected,
        violations: currentViolations,
        rssMiB: Math.round((mem.rss / MiB) * 10) / 10,
        fds,
        cpuS: Math.round(cpuS * 10) / 10,
        cpuSPerKRequests: requests > 0 ? Math.round((cpuS * 1e6) / requests) / 1000 : 0,
        machineBusy:
          Math.round(
            ((machine.busy - machineAtStart.busy) / Math.max(1, machine.total - machineAtStart.total)) * 100,
          ) / 100,
        redis: redisState,
      };
      cpuAtStart = cpu;
      machineAtStart = machine;
      intervals.push(interval);
      current = {};
      currentUnexpected = 0;
      currentViolations = 0;
      intervalStart = now;
      const outcomes = Object.entries(counts)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => `${k} ${v}`)
        .join(", ");
      log(
        `[${interval.fromS}-${interval.toS} s] ${requests} requests (${outcomes}) | unexpected ${interval.unexpected} | violations ${interval.violations} | RSS ${interval.rssMiB} MiB | fds ${fds} | pullgate CPU ${interval.cpuS} s (${interval.cpuSPerKRequests} s per 1000 requests), machine ${Math.round(interval.machineBusy * 100)}% busy | redis ${redisState}`,
      );
    };
    const ticker = (async () => {
      while (running()) {
        const next = Math.min(intervalStart + INTERVAL_S * 1000, endAt);
        await sleep(Math.max(0, next - Date.now()));
        if (Date.now() < endAt) await closeInterval(Date.now());
      }
    })();

    const sampler = (async () => {
      while (running()) {
        const mem = await memoryOf(pid).catch(() => ({ rss: Number.NaN }));
        const fds = await fdCount(pid).catch(() => Number.NaN);
        samples.push({ atS: Math.round(elapsedS()), rssMiB: Math.round((mem.rss / MiB) * 10) / 10, fds });
        await sleep(Math.min(SAMPLE_MS, Math.max(0, endAt - Date.now())));
      }
    })();
    const workers = [
      ...Array.from({ length: MIX_WORKERS }, () => mixWorker(world)),
      loop("cold", () => coldPull(world)),
      loop("toggle", async () => {
        await toggleProbe(world);
        await sleep(50);
      }),
      loop("slow", () => slowRead(world)),
      loop("slow", () => slowRead(world)),
      adminToggler(world),
      redisController(redis),
    ];
    await Promise.all([...workers, ticker, sampler]);
    await closeInterval(Date.now());

    // The end: pullgate still healthy, its log clean, and it stops cleanly.
    const health = await call(pullgate.adminUrl, "/healthz").catch(() => undefined);
    const logText = await readFile(pullgate.logFile, "utf8");
    const errorLines = logText.split("\n").filter((l) => l.includes('"level":"error"'));
    const unhandled = errorLines.filter((l) => l.includes("unhandled rejection"));
    const stopStarted = Date.now();
    await pullgate.proc.stop(10_000);
    const exitCode = await pullgate.proc.exited;
    const stopMs = Date.now() - stopStarted;
    pullgate = undefined;

    // Flat: what the first and last interval show is reported; the checks compare the second half of the run
    // (RSS at half-time vs at the end), because V8 grows its heap for the first minutes of load before it
    // settles (see bench/RESULTS-soak.md), and a leak keeps growing after that.
    const first = intervals[0] as Interval;
    const last = intervals[intervals.length - 1] as Interval;
    const mid = samples.find((x) => x.atS >= SECONDS / 2) ?? (samples[0] as Sample);
    const end = samples[samples.length - 1] as Sample;
    const rssGrowthMiB = Math.round((last.rssMiB - first.rssMiB) * 10) / 10;
    const rssLateGrowthMiB = Math.round((end.rssMiB - mid.rssMiB) * 10) / 10;
    const fdGrowth = last.fds - first.fds;
    const fdLateGrowth = end.fds - mid.fds;
    const checks = {
      noUnexpected: unexpectedTotal === 0,
      noViolations: violationsTotal === 0,
      // Judged on runs of 5 minutes or more: before that the heap is still growing to its working size.
      rssFlatInSecondHalf:
        SECONDS >= RSS_CHECK_MIN_S ? rssLateGrowthMiB <= Math.max(16, mid.rssMiB * 0.1) : null,
      fdsFlat: fdGrowth <= 16 && fdLateGrowth <= 16,
      healthyAtEnd: health?.status === 200,
      noUnhandledRejections: unhandled.length === 0,
      cleanExit: exitCode === 0,
    };
    const requestsTotal = Object.values(totals).reduce((a, b) => a + b, 0);
    const when = new Date(startedAt);
    const resultFile = join(BENCH_DIR, "results", `soak-${timestamp(when)}.json`);
    const result = {
      startedAt: when.toISOString(),
      seconds: SECONDS,
      intervalSeconds: INTERVAL_S,
      entry: ENTRY,
      nodeArgs: NODE_ARGS,
      node: process.version,
      load: {
        mixWorkers: MIX_WORKERS,
        mix: "55% warm pull (HEAD tag + GET digest), 10% 2 MiB blob, 35% denied pull",
        cold: "1 worker: push + HEAD tag + GET digest, signed/unsigned alternately",
        slowReaders: 2,
        slowReadBytesPerS: SLOW_READ_BYTES_PER_S,
        toggleEveryMs: TOGGLE_EVERY_MS,
        redisRestarts: REDIS_RESTARTS,
        maxConcurrentRequests: MIX_WORKERS + 1 + 1 + 2 + 1,
      },
      requestsTotal,
      totals,
      unexpected: unexpectedTotal,
      unexpectedSamples,
      violations: violationsTotal,
      violationSamples,
      intervals,
      rss: {
        firstMiB: first.rssMiB,
        lastMiB: last.rssMiB,
        growthMiB: rssGrowthMiB,
        halfTimeMiB: mid.rssMiB,
        endMiB: end.rssMiB,
        secondHalfGrowthMiB: rssLateGrowthMiB,
      },
      fds: { first: first.fds, last: last.fds, growth: fdGrowth, halfTime: mid.fds, end: end.fds },
      samples,
      pullgateLog: {
        errorLines: errorLines.length,
        unhandledRejections: unhandled.length,
        errorSamples: errorLines.slice(0, 10),
      },
      stop: { exitCode, ms: stopMs },
      checks,
    };
    await writeFile(resultFile, `${JSON.stringify(result, null, 2)}\n`);
    await writeFile(
      join(BENCH_DIR, "RESULTS-soak.md"),
      renderMarkdown(result, relative(BENCH_DIR, resultFile)),
    );
    log(`${requestsTotal} requests, ${unexpectedTotal} unexpected, ${violationsTotal} violations`);
    log(
      `RSS ${first.rssMiB} → ${last.rssMiB} MiB (first vs last interval), ${mid.rssMiB} → ${end.rssMiB} MiB (second half); fds ${first.fds} → ${last.fds}; pullgate error lines ${errorLines.length}`,
    );
    for (const s of unexpectedSamples.slice(0, 10)) log(`  unexpected: ${s}`);
    for (const s of violationSamples.slice(0, 10)) log(`  VIOLATION: ${s}`);
    for (const [name, ok] of Object.entries(checks))
      log(`${ok === null ? `n/a  (runs under ${RSS_CHECK_MIN_S} s)` : ok ? "ok  " : "FAIL"} ${name}`);
    log(`wrote ${relative(REPO_DIR, resultFile)} and bench/RESULTS-soak.md`);
    return Object.values(checks).every((ok) => ok !== false) ? 0 : 1;
  } finally {
    await cleanup();
  }
}

type Result = {
  startedAt: string;
  seconds: number;
  intervalSeconds: number;
  entry: string;
  node: string;
  requestsTotal: number;
  totals: Record<string, number>;
  unexpected: number;
  unexpectedSamples: string[];
  violations: number;
  intervals: Interval[];
  rss: {
    firstMiB: number;
    lastMiB: number;
    growthMiB: number;
    halfTimeMiB: number;
    endMiB: number;
    secondHalfGrowthMiB: number;
  };
  fds: { first: number; last: number; growth: number; halfTime: number; end: number };
  pullgateLog: { errorLines: number; unhandledRejections: number };
  stop: { exitCode: number | string; ms: number };
  checks: Record<string, boolean | null>;
};

function renderMarkdown(r: Result, resultFile: string): string {
  const lines = [
    "# Soak",
    "",
    "`npm run soak` runs pullgate under mixed load with faults for `SOAK_SECONDS` (default 600; e.g.",
    "`SOAK_SECONDS=90 npm run soak` for a quick check) and fails (exit 1) when a check below fails. See the",
    "header of [`soak.ts`](soak.ts) for the load: warm, cold, blob and denied pulls, two slow readers, admin",
    "toggles of a project between enforce and audit, and Redis (AOF) stopped and started twice, at most 16",
    "requests at a time over loopback, pullgate as a child process. RSS is VmRSS and fds the entries of",
    "`/proc/<pid>/fd` of the pullgate process (sampled every 5 s; the table shows the end of each interval).",
    "V8 grows pullgate's heap over the first minutes of load, so the RSS check (runs of 5 minutes or more)",
    'compares half-time with the end of the run; the first and last intervals are reported too. "toggle in',
    'transition" answers came within 3 s of a mode change and are not judged; every other answer is, against',
    "the mode in force.",
    "",
    `## Latest run: ${r.startedAt}, ${r.seconds} s (pullgate from ${r.entry}, Node ${r.node})`,
    "",
    `Results: [\`${resultFile}\`](${resultFile}).`,
    "",
    "| interval | requests | unexpected | violations | RSS (MiB) | fds | pullgate CPU (s) | CPU s / 1000 req. | machine busy | Redis at the end |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ...r.intervals.map(
      (i) =>
        `| ${i.fromS}–${i.toS} s | ${i.requests} | ${i.unexpected} | ${i.violations} | ${i.rssMiB} | ${i.fds} | ${i.cpuS} | ${i.cpuSPerKRequests} | ${Math.round(i.machineBusy * 100)}% | ${i.redis} |`,
    ),
    "",
    "| outcome | count |",
    "|---|---:|",
    ...Object.entries(r.totals)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `| ${k} | ${v} |`),
    "",
    "| check | result |",
    "|---|---|",
    ...Object.entries(r.checks).map(
      ([k, v]) =>
        `| ${k} | ${v === null ? `not judged (run under ${RSS_CHECK_MIN_S} s)` : v ? "ok" : "**FAIL**"} |`,
    ),
    "",
    `- ${r.requestsTotal} requests; ${r.unexpected} unexpected answers; ${r.violations} denials turned into a 200.`,
    `- RSS ${r.rss.firstMiB} → ${r.rss.lastMiB} MiB (end of the first vs the last interval); ${r.rss.halfTimeMiB} → ${r.rss.endMiB} MiB over the second half (the check). fds ${r.fds.first} → ${r.fds.last}.`,
    `- pullgate logged ${r.pullgateLog.errorLines} error lines (${r.pullgateLog.unhandledRejections} unhandled rejections); SIGTERM at the end: exit ${r.stop.exitCode} after ${r.stop.ms} ms.`,
    ...(r.unexpectedSamples.length > 0
      ? ["", "Unexpected answers (first ones):", "", ...r.unexpectedSamples.slice(0, 10).map((s) => `- ${s}`)]
      : []),
    "",
  ];
  return lines.join("\n");
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(`failed: ${(err as Error)?.stack ?? String(err)}`);
    process.exit(1);
  },
);
