import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseConfig } from "../config/index.ts";
import {
  createLegacySignature,
  createTinyImage,
  ensureTools,
  findOnPath,
  freePort,
  generateSigningKey,
  type ManagedProcess,
  pushArtifact,
  type RedisServer,
  RegistryWriter,
  type RequiredTool,
  run,
  skopeoEnv,
  startDockerRegistry,
  startRedisServer,
} from "../local/index.ts";
import { type RunningPullgate, startPullgate } from "../server/index.ts";
import { DEMO_REDIS_HMAC_KEY_ENV, renderDemoConfig } from "./demo-config.ts";

type Logger = NonNullable<NonNullable<Parameters<typeof startPullgate>[1]>["logger"]>;
type LogRecord = Record<string, unknown>;

export const DEMO_USAGE = `usage: pullgate demo [--keep]

  Shows signed-only enforcement end to end, with nothing to configure: starts a throwaway
  docker-registry, pushes demo/signed:v1 (signed with a fresh key) and demo/unsigned:v1, starts
  pullgate in enforce mode in front of it and pulls both with skopeo. Installs docker-registry and
  skopeo with apt-get when missing (Debian 12, root); uses redis-server when it is on PATH.
  Exits 0 when the signed image was pulled and the unsigned one denied.

  --keep    keep the registry and pullgate running until Ctrl-C, to try other clients against them
`;

/** Markers around the printed config (the integration test extracts it between them). */
export const CONFIG_BEGIN = "----- pullgate.yaml -----";
export const CONFIG_END = "----- end of pullgate.yaml -----";

const KEY_NAME = "demo";
const SIGNED = "demo/signed";
const UNSIGNED = "demo/unsigned";
const TAG = "v1";
/** What the demo runs besides pullgate (redis-server only when it is there). */
const DEMO_TOOLS: readonly RequiredTool[] = [
  { command: "docker-registry", debianPackage: "docker-registry" },
  { command: "skopeo", debianPackage: "skopeo" },
];

/** The message a registry's DENIED error carried, from skopeo's stderr (it escapes the quotes). */
export function deniedMessageOf(stderr: string): string | undefined {
  const line = stderr.split("\n").find((l) => l.includes("denied: "));
  if (line === undefined) return undefined;
  const message = line.slice(line.indexOf("denied: ") + "denied: ".length).replace(/"\s*$/, "");
  return message.replace(/\\(["\\])/g, "$1");
}

/** The last manifest decision pullgate logged for a repository. */
export function lastDecisionFor(records: readonly LogRecord[], repository: string): LogRecord | undefined {
  return records.findLast(
    (r) => r.event === "audit" && r.kind === "manifest-decision" && r.repository === repository,
  );
}

function shortDigest(digest: unknown): string {
  return typeof digest === "string" ? `${digest.slice(0, "sha256:".length + 12)}…` : "?";
}

interface Style {
  ok(text: string): string;
  bad(text: string): string;
  dim(text: string): string;
  bold(text: string): string;
}

function styleFor(stream: NodeJS.WriteStream): Style {
  const on = stream.isTTY === true && !process.env.NO_COLOR;
  const wrap = (code: string) => (text: string) => (on ? `\x1b[${code}m${text}\x1b[0m` : text);
  return { ok: wrap("32"), bad: wrap("31"), dim: wrap("2"), bold: wrap("1") };
}

/**
 * Everything the demo started, stopped in reverse order. `stop()` is idempotent and may run while the
 * demo is still setting up (Ctrl-C): whatever is started after it began is stopped as it arrives.
 * `killNow()` is the synchronous last resort for the process "exit" event.
 */
class Resources {
  #dir: string | undefined;
  #daemons: ManagedProcess[] = [];
  #pullgate: RunningPullgate | undefined;
  #stopping: Promise<void> | undefined;

  setDir(dir: string): void {
    this.#dir = dir;
    if (this.#stopping) removeDir(dir);
  }

  trackDaemon = (daemon: ManagedProcess): void => {
    this.#daemons.push(daemon);
    if (this.#stopping) void daemon.stop();
  };

  async setPullgate(pullgate: RunningPullgate): Promise<void> {
    this.#pullgate = pullgate;
    if (this.#stopping) await pullgate.stop();
  }

  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      await this.#pullgate?.stop().catch(() => {});
      for (const daemon of this.#daemons.toReversed()) await daemon.stop();
      if (this.#dir) removeDir(this.#dir);
    })();
    return this.#stopping;
  }

  killNow(): void {
    for (const daemon of this.#daemons) daemon.kill();
    if (this.#dir) removeDir(this.#dir);
  }
}

function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
}

export interface DemoOptions {
  keep: boolean;
}

export function parseDemoArgs(args: readonly string[]): DemoOptions | { error: string } | "help" {
  let keep = false;
  for (const arg of args) {
    if (arg === "--keep") keep = true;
    else if (arg === "--help" || arg === "-h") return "help";
    else return { error: `unknown option ${JSON.stringify(arg)}` };
  }
  return { keep };
}

/** `pullgate demo`: returns the exit code (0: signed pulled and unsigned denied). */
export async function runDemo(args: readonly string[]): Promise<number> {
  const parsed = parseDemoArgs(args);
  if (parsed === "help") {
    process.stdout.write(DEMO_USAGE);
    return 0;
  }
  if ("error" in parsed) {
    process.stderr.write(`pullgate demo: ${parsed.error}\n${DEMO_USAGE}`);
    return 2;
  }
  const style = styleFor(process.stdout);
  const say = (line = "") => {
    if (!process.stdout.destroyed) process.stdout.write(`${line}\n`);
  };
  const resources = new Resources();
  const onExit = () => resources.killNow();
  let onSignal: (signal: NodeJS.Signals) => void = () => {};
  const interruption = new Promise<NodeJS.Signals>((resolve) => {
    onSignal = resolve;
  });
  // A closed stdout (`pullgate demo | head`) must not crash the demo before it cleaned up (the error
  // can come after the last write, so the listener stays).
  process.stdout.on("error", () => {});
  process.once("exit", onExit);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const started = Date.now();
  try {
    let interrupted = false;
    const demo = showDemo(
      parsed,
      resources,
      (line) => {
        if (!interrupted) say(line);
      },
      style,
    );
    const result = await Promise.race([demo, interruption]);
    if (typeof result === "string") {
      interrupted = true;
      say(`\n${result}: stopping everything the demo started`);
      await resources.stop();
      // Whatever it was doing fails now that its servers are gone; give it a moment to unwind.
      const timer = new AbortController();
      await Promise.race([
        demo.catch(() => {}),
        sleep(5_000, undefined, { signal: timer.signal }).catch(() => {}),
      ]);
      timer.abort();
      return 130;
    }
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    if (parsed.keep) say(`\n${await interruption}: stopping everything the demo started`);
    await resources.stop();
    if (result.problems.length === 0) {
      const kept = parsed.keep ? "" : " (--keep keeps it running)";
      say(
        `${style.ok("✔ As expected")}: signed pulled, unsigned denied, in ${seconds} s. All stopped and removed${kept}.`,
      );
      return 0;
    }
    say(style.bad("✘ Not as expected: the signed image must be pulled and the unsigned one denied."));
    for (const problem of result.problems) say(`  ${problem}`);
    const warnings = result.logs
      .filter((r) => r.event !== "audit" && (r.level === "warn" || r.level === "error"))
      .slice(-5);
    if (warnings.length > 0) say("pullgate's last warnings and errors:");
    for (const record of warnings) say(`  ${JSON.stringify(record)}`);
    return 1;
  } catch (err) {
    await resources.stop();
    process.stderr.write(`pullgate demo: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await resources.stop();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    process.off("exit", onExit);
  }
}

async function showDemo(
  options: DemoOptions,
  resources: Resources,
  say: (line?: string) => void,
  style: Style,
): Promise<{ problems: string[]; logs: LogRecord[] }> {
  say(style.bold("pullgate demo: only signed images get through"));
  const installed = await ensureTools(DEMO_TOOLS, say);
  if (installed.length > 0) say(`  installed ${installed.join(", ")}`);
  const dir = mkdtempSync(join(tmpdir(), "pullgate-demo-"));
  resources.setDir(dir);
  for (const sub of ["registry", "redis", "pulls"]) mkdirSync(join(dir, sub));

  let redis: RedisServer | undefined;
  let cacheNote = "Redis not found: using the in-process cache";
  if (findOnPath("redis-server")) {
    try {
      redis = await startRedisServer({ dir: join(dir, "redis"), onSpawn: resources.trackDaemon });
      cacheNote = "verdicts cached in Redis";
    } catch (err) {
      cacheNote = `Redis did not start (${(err as Error).message.split("\n")[0]}): using the in-process cache`;
    }
  }
  const registry = await startDockerRegistry({ dir: join(dir, "registry"), onSpawn: resources.trackDaemon });
  const registryHost = new URL(registry.url).host;

  // A fresh key; only its public half goes into the config.
  const key = generateSigningKey();
  const signed = createTinyImage("hello.txt", "demo/signed:v1, signed by the pullgate demo key\n");
  const unsigned = createTinyImage("hello.txt", "demo/unsigned:v1, signed by nobody\n");
  const writer = new RegistryWriter(registry.url);
  await pushArtifact(writer, SIGNED, TAG, signed);
  await pushArtifact(writer, UNSIGNED, TAG, unsigned);
  const signature = createLegacySignature({
    manifestDigest: signed.manifestDigest,
    dockerReference: `${registryHost}/${SIGNED}`,
    key,
  });
  await pushArtifact(writer, SIGNED, signature.tag, signature);
  say(`  registry  ${registry.url}  docker-registry: ${SIGNED}:${TAG} (cosign-signed), ${UNSIGNED}:${TAG}`);

  const adminToken = randomBytes(24).toString("base64url");
  const redisHmacKey = randomBytes(32).toString("hex");
  const records: LogRecord[] = [];
  const logger: Logger = {
    log(level, event, fields) {
      records.push({ level, event, ...fields });
    },
  };
  let configText = "";
  let pullgate: RunningPullgate;
  for (let attempt = 1; ; attempt++) {
    configText = renderDemoConfig({
      proxyPort: await freePort(),
      adminPort: await freePort(),
      registryUrl: registry.url,
      redisUrl: redis?.url,
      keyName: KEY_NAME,
      publicKeyPem: key.publicKeyPem,
    });
    const config = parseConfig(configText, {
      source: "pullgate demo",
      baseDir: dir,
      env: { PULLGATE_ADMIN_TOKEN: adminToken, [DEMO_REDIS_HMAC_KEY_ENV]: redisHmacKey },
    });
    try {
      pullgate = await startPullgate(config, { logger });
      await resources.setPullgate(pullgate);
      break;
    } catch (err) {
      // Another process took one of the free ports in the meantime: pick new ones.
      if ((err as { code?: unknown }).code !== "EADDRINUSE" || attempt === 3) throw err;
    }
  }
  const proxyHost = new URL(pullgate.proxyUrl).host;
  say(
    `  pullgate  ${pullgate.proxyUrl}  project demo: enforce, trusting only key '${KEY_NAME}'; ${cacheNote}`,
  );
  say(`Pulling both through pullgate: skopeo copy docker://${proxyHost}/<image> dir:<tmp>`);
  const problems: string[] = [];
  const pull = (repository: string) =>
    run(
      "skopeo",
      [
        "--insecure-policy",
        "copy",
        "--src-tls-verify=false",
        "--src-no-creds",
        `docker://${proxyHost}/${repository}:${TAG}`,
        `dir:${join(dir, "pulls", repository.replaceAll("/", "-"))}`,
      ],
      { env: skopeoEnv(), timeoutMs: 60_000 },
    );

  const signedPull = await pull(SIGNED);
  const signedDecision = lastDecisionFor(records, SIGNED);
  if (signedPull.code === 0 && signedDecision?.outcome === "allow") {
    say(
      `  ${style.ok("✔")} ${SIGNED}:${TAG} pulled: signed by key '${String(signedDecision.key)}' (fingerprint ${shortDigest(signedDecision.keyFingerprint)})`,
    );
  } else {
    const why = deniedMessageOf(signedPull.stderr) ?? lastLine(signedPull.stderr);
    say(
      `  ${style.bad("✘")} ${SIGNED}:${TAG} not pulled (${String(signedDecision?.reason ?? "error")}): ${why}`,
    );
    problems.push(`${SIGNED}:${TAG} should have been pulled`);
  }

  const unsignedPull = await pull(UNSIGNED);
  const unsignedDecision = lastDecisionFor(records, UNSIGNED);
  const denied = deniedMessageOf(unsignedPull.stderr);
  if (unsignedPull.code !== 0 && unsignedDecision?.outcome === "deny") {
    say(
      `  ${style.bad("✘")} ${UNSIGNED}:${TAG} denied (${String(unsignedDecision.reason)}): ${denied ?? lastLine(unsignedPull.stderr)}`,
    );
    if (unsignedDecision.reason !== "NO_SIGNATURE")
      problems.push(
        `${UNSIGNED}:${TAG} was denied with ${String(unsignedDecision.reason)}, not NO_SIGNATURE`,
      );
  } else if (unsignedPull.code === 0) {
    say(`  ${style.bad("✔")} ${UNSIGNED}:${TAG} pulled, but it is not signed`);
    problems.push(`${UNSIGNED}:${TAG} should have been denied`);
  } else {
    say(
      `  ${style.bad("✘")} ${UNSIGNED}:${TAG} not pulled, and not denied either: ${lastLine(unsignedPull.stderr)}`,
    );
    problems.push(`${UNSIGNED}:${TAG} should have been denied by pullgate`);
  }

  const dryRun = await adminVerify(pullgate.adminUrl, adminToken, `${SIGNED}:${TAG}`);
  say(`Admin API dry run, POST /admin/v1/verify {"reference":"${SIGNED}:${TAG}"}: ${dryRun}`);

  say(style.dim(CONFIG_BEGIN));
  sayLines(configText.trimEnd(), say);
  say(style.dim(CONFIG_END));
  if (!options.keep)
    // The registry (and Redis) this config points at stop with the demo: say what works instead.
    say(
      `Next: npx pullgate demo --keep to try it; your own registry and key: README "Sign an image for pullgate"`,
    );

  if (options.keep) {
    const tokenFile = join(dir, "admin-token");
    writeFileSync(tokenFile, `${adminToken}\n`, { mode: 0o600 });
    say(style.bold("Kept running until Ctrl-C (then everything is stopped and removed):"));
    say(`  registry  ${registryHost} (direct, no enforcement)   pullgate  ${proxyHost}`);
    say(`  admin     ${pullgate.adminUrl} (token: PULLGATE_ADMIN_TOKEN=$(cat ${tokenFile}))`);
    say(`  try       skopeo inspect --tls-verify=false docker://${proxyHost}/${UNSIGNED}:${TAG}`);
    say(
      `            PULLGATE_ADMIN_TOKEN=$(cat ${tokenFile}) npx pullgate verify ${proxyHost}/${UNSIGNED}:${TAG} --admin ${pullgate.adminUrl}`,
    );

    say(`            ctr images pull --plain-http ${proxyHost}/${SIGNED}:${TAG}   (with containerd running)`);
  }
  return { problems, logs: records };
}

function sayLines(text: string, say: (line?: string) => void): void {
  for (const line of text.split("\n")) say(line);
}

function lastLine(text: string): string {
  return text.trimEnd().split("\n").at(-1) ?? "";
}

interface VerifyAnswer {
  outcome?: string;
  reason?: string;
  via?: string;
  key?: string;
  signatures?: Array<{ result?: string; key?: string }>;
}

/** The admin dry run for `reference`, in one line. */
async function adminVerify(adminUrl: string, token: string, reference: string): Promise<string> {
  const res = await fetch(`${adminUrl}/admin/v1/verify`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ reference }),
  });
  const body = (await res.json()) as VerifyAnswer;
  if (!res.ok) return `${res.status}: ${JSON.stringify(body)}`;
  const signatures = (body.signatures ?? [])
    .map((s) => `${s.result ?? "?"}${s.key ? ` by key '${s.key}'` : ""}`)
    .join(", ");
  const how = body.outcome === "allow" ? `via ${body.via ?? "?"}` : `(${body.reason ?? "?"})`;
  return `${body.outcome ?? "?"} ${how} (signatures: ${signatures || "none"})`;
}
