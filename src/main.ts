import { readFileSync } from "node:fs";
import { type Config, ConfigError, loadConfig, policyWarnings } from "./config/index.ts";
import { type RunningPullgate, startPullgate } from "./server/index.ts";
import { startTracing } from "./telemetry/index.ts";

const USAGE = `usage: pullgate serve [--config FILE] [--check]
       pullgate verify REFERENCE [--admin URL]
       pullgate demo [--keep]
       pullgate trust update [--config FILE] [--root NAME] [--mirror URL] [--tuf-root FILE]
       pullgate --version

  serve            run the proxy (pullgate serve --help for what it serves)
  verify           the decision a running pullgate would make for an image, and why (the dry run)
  demo             see enforcement work with nothing to configure: a throwaway registry, a signed and
                   an unsigned image, pulled through pullgate with skopeo (--keep: keep it running)
  trust update     fetch the current Sigstore trusted root over TUF into its configured file
                   (pullgate trust --help for its options)
`;

const SERVE_USAGE = `usage: pullgate serve [--config FILE] [--check]

  --config FILE    YAML configuration (see README "Configuration"); else $PULLGATE_CONFIG; else the
                   embedded default: Docker Hub upstream, proxy 127.0.0.1:5050, admin 127.0.0.1:5051,
                   every project mode off
  --check          validate the configuration and exit (0 valid, 2 invalid); warnings are printed

  Serves two listeners:
  proxy (listen)         the registry API clients pull through: /v2/…
  admin (admin.listen)   /healthz, /readyz and /metrics (Prometheus text) without auth; with
                         admin.token (or $PULLGATE_ADMIN_TOKEN) or admin.jwt, the policy API
                         (/admin/v1/projects/…), the dry run (POST /admin/v1/verify, or pullgate verify)
                         and the verdict cache (DELETE /admin/v1/cache/DIGEST)
  Logs go to stdout (log.format: json or text; log.level): access lines, events, and the audit
  records of every decision (JSON, schema pullgate.audit/v1; log.audit.to: file for a file of their own).
  Tracing: set OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_TRACES_EXPORTER=otlp) to export spans.
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
    version?: string;
  };
  return pkg.version ?? "unknown";
}

/** The CLI. Returns the process exit code for errors before serving; serving ends with exit 0 on SIGTERM/SIGINT. */
export async function runCli(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<number | undefined> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === "--version" || command === "-v" || command === "version") {
    process.stdout.write(`pullgate ${version()}\n`);
    return 0;
  }
  if (command === "verify") {
    const { runVerifyCommand } = await import("./cli/verify-command.ts");
    return runVerifyCommand(rest, env);
  }
  if (command === "demo") {
    const { runDemo } = await import("./demo/index.ts");
    return runDemo(rest);
  }
  if (command === "trust") {
    const { runTrustCommand } = await import("./trust/trust-command.ts");
    return runTrustCommand(rest, env);
  }
  if (command !== "serve") {
    process.stderr.write(`pullgate: unknown command ${JSON.stringify(command)}\n${USAGE}`);
    return 2;
  }
  const args = parseServeArgs(rest, env);
  if (typeof args === "number") return args;
  let config: Config;
  try {
    config = loadConfig({ path: args.configPath, env });
  } catch (err) {
    // Unacceptable keys (weak RSA, unsupported curves) are config problems too.
    if (err instanceof ConfigError) {
      process.stderr.write(`pullgate: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (args.checkOnly) {
    for (const warning of policyWarnings(config)) process.stdout.write(`pullgate: warning: ${warning}\n`);
    process.stdout.write(`pullgate: configuration ${config.source} is valid\n`);
    return 0;
  }
  return serve(config, env);
}

/** `serve`'s options: --config FILE (else $PULLGATE_CONFIG) and --check; an exit code for bad ones. */
function parseServeArgs(
  rest: readonly string[],
  env: NodeJS.ProcessEnv,
): { configPath: string | undefined; checkOnly: boolean } | number {
  let configPath = env.PULLGATE_CONFIG || undefined;
  let checkOnly = false;
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] as string;
    if (arg === "--help" || arg === "-h") {
      process.stdout.write(SERVE_USAGE);
      return 0;
    }
    if (arg === "--check") checkOnly = true;
    else if (arg === "--config" || arg === "-c" || arg.startsWith("--config=")) {
      configPath = arg.startsWith("--config=") ? arg.slice("--config=".length) : rest[++i];
      if (!configPath) {
        process.stderr.write("pullgate: --config needs a file\n");
        return 2;
      }
    } else {
      process.stderr.write(`pullgate: unknown option ${JSON.stringify(arg)}\n${SERVE_USAGE}`);
      return 2;
    }
  }
  return { configPath, checkOnly };
}

/** Starts the listeners and stops them on SIGTERM/SIGINT (exit 0 once drained). */
async function serve(config: Config, env: NodeJS.ProcessEnv): Promise<number | undefined> {
  let running: RunningPullgate;
  try {
    running = await startPullgate(config);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`pullgate: ${err.message}\n`);
      return 2;
    }
    // ListenError says which listener, where, and why (EADDRINUSE: the port is taken).
    process.stderr.write(`pullgate: ${(err as Error).message}\n`);
    return 1;
  }
  const { logger } = running.deps;
  // OpenTelemetry only when the OTEL_* variables ask for it (else nothing is loaded); flushed on stop.
  const tracing = await startTracing(env, logger).catch((err: unknown) => {
    logger.log("warn", "tracing not started", { cause: { code: (err as { code?: unknown }).code } });
    return undefined;
  });
  const onSignal = (signal: string) => {
    logger.log("info", "shutting down", { signal, drainTimeoutMs: config.shutdown.drainTimeoutMs });
    running
      .stop()
      .finally(() => tracing?.shutdown())
      .then(
        () => {
          logger.flush?.();
          process.exit(0);
        },
        () => {
          logger.flush?.();
          process.exit(1);
        },
      );
  };
  // A last line of defence: a library promise nobody handled must not end the process (Node's
  // default), which would take the pull path of every node with it. It is logged as a bug.
  process.on("unhandledRejection", (reason) => {
    logger.log("error", "unhandled rejection", {
      code: (reason as { code?: unknown })?.code,
      stack: (reason as Error)?.stack,
    });
  });
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
  return undefined;
}
