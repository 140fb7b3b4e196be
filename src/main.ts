import { createServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { getRequestListener } from "@hono/node-server";
import { type Apps, createApps, createDeps, type Deps } from "./app.ts";
import { type Config, ConfigError, type ListenAddress, loadConfig, type TlsConfig } from "./config/index.ts";
import { OciError, renderError } from "./oci/index.ts";
import type { Logger } from "./telemetry/index.ts";
import { readTlsMaterial, watchTlsMaterial } from "./tls-reloader.ts";

type FetchHandler = Parameters<typeof getRequestListener>[0];

export interface RunningPullgate {
  deps: Deps;
  apps: Apps;
  /** http://host:port of the proxy and admin listeners (actual ports, also when configured as 0). */
  proxyUrl: string;
  adminUrl: string;
  /** Stop accepting, drain in-flight requests up to the configured bound, close upstream pools. */
  stop(): Promise<void>;
}

/** Starts both listeners for a loaded config. Used by the CLI and by integration tests. */
export async function startPullgate(
  config: Config,
  options: { logger?: Logger } = {},
): Promise<RunningPullgate> {
  const deps = await createDeps(config, options);
  const apps = createApps(deps);
  let proxy: Server;
  let admin: Server;
  let stopWatching = () => {};
  try {
    const p = await listen(
      apps.proxy,
      config.listen,
      config.tls ? { config: config.tls, logger: deps.logger } : undefined,
    );
    proxy = p.server;
    stopWatching = p.stopWatching;
    try {
      admin = (await listen(apps.admin, config.admin.listen)).server;
    } catch (err) {
      stopWatching();
      proxy.close();
      throw err;
    }
  } catch (err) {
    await deps.close();
    throw err;
  }
  const proxyUrl = urlOf(proxy, config.tls !== undefined);
  const adminUrl = urlOf(admin, false);
  deps.logger.log("info", "listening", {
    proxy: proxyUrl,
    admin: adminUrl,
    config: config.source,
    upstreams: config.upstreams.map((u) => ({
      name: u.name,
      url: u.url,
      registry: u.registry,
      default: u.default,
    })),
  });
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      deps.state.draining = true;
      stopWatching();
      // The admin listener stays up while the proxy drains, so /readyz can report "draining".
      await drain(proxy, config.shutdown.drainTimeoutMs);
      await drain(admin, 1_000);
      await deps.close();
    })();
    return stopping;
  };
  return { deps, apps, proxyUrl, adminUrl, stop };
}

function listen(
  app: { fetch: FetchHandler },
  address: ListenAddress,
  tls?: { config: TlsConfig; logger: Logger },
): Promise<{ server: Server; stopWatching: () => void }> {
  const listener = getRequestListener(app.fetch, {
    // Requests node-server cannot even turn into a Request (backslash in the path, bad Host) still
    // get an OCI error body, not an empty 400.
    errorHandler: () => renderError(new OciError("NAME_INVALID", "malformed request", { status: 400 })),
  });
  let server: Server;
  let stopWatching = () => {};
  if (tls) {
    const https = createHttpsServer(readTlsMaterial(tls.config), listener);
    stopWatching = watchTlsMaterial(https, tls.config, tls.logger);
    server = https as unknown as Server;
  } else {
    server = createServer(listener);
  }
  // While draining (after close()), a keep-alive connection whose response just ended is closed
  // right away instead of idling until the client hangs up or the drain bound cuts it.
  server.on("request", (_req, res) => {
    res.once("finish", () => {
      if (!server.listening) setImmediate(() => server.closeIdleConnections());
    });
  });
  // Clients keep connections alive between the HEAD and the GETs of one pull.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 30_000;
  server.requestTimeout = 0;
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(address.port, address.host, () => {
      server.off("error", reject);
      resolve({ server, stopWatching });
    });
  });
}

function urlOf(server: Server, https: boolean): string {
  const a = server.address() as AddressInfo;
  const host = a.family === "IPv6" ? `[${a.address}]` : a.address;
  return `${https ? "https" : "http"}://${host}:${a.port}`;
}

/** Stops accepting, lets in-flight requests finish, and cuts what is left after `timeoutMs`. */
function drain(server: Server, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), timeoutMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}

const USAGE = `usage: pullgate serve [--config FILE]
       pullgate demo [--keep]

  serve            run the proxy (config from --config, else $PULLGATE_CONFIG, else the embedded
                   default: Docker Hub upstream, proxy 127.0.0.1:5050, admin 127.0.0.1:5051, mode off)
  --config FILE    YAML configuration (see README "Configuration")
  --check          validate the configuration and exit (0 valid, 2 invalid)
  demo             see enforcement work with nothing to configure: a throwaway registry, a signed and
                   an unsigned image, pulled through pullgate with skopeo (--keep: keep it running)
`;

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
  if (command === "demo") {
    const { runDemo } = await import("./demo/index.ts");
    return runDemo(rest);
  }
  if (command !== "serve") {
    process.stderr.write(`pullgate: unknown command ${JSON.stringify(command)}\n${USAGE}`);
    return 2;
  }
  let configPath = env.PULLGATE_CONFIG || undefined;
  let checkOnly = false;
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] as string;
    if (arg === "--check") checkOnly = true;
    else if (arg === "--config" || arg === "-c" || arg.startsWith("--config=")) {
      configPath = arg.startsWith("--config=") ? arg.slice("--config=".length) : rest[++i];
      if (!configPath) {
        process.stderr.write("pullgate: --config needs a file\n");
        return 2;
      }
    } else {
      process.stderr.write(`pullgate: unknown option ${JSON.stringify(arg)}\n${USAGE}`);
      return 2;
    }
  }
  let config: Config;
  try {
    config = loadConfig({ path: configPath, env });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`pullgate: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (checkOnly) {
    process.stdout.write(`pullgate: configuration ${config.source} is valid\n`);
    return 0;
  }
  let running: RunningPullgate;
  try {
    running = await startPullgate(config);
  } catch (err) {
    // Keys verify/ does not accept (weak RSA, unsupported curves) are config problems too.
    if (err instanceof ConfigError) {
      process.stderr.write(`pullgate: ${err.message}\n`);
      return 2;
    }
    const code = (err as { code?: unknown }).code;
    process.stderr.write(
      `pullgate: cannot listen: ${typeof code === "string" ? code : (err as Error).message}\n`,
    );
    return 1;
  }
  const onSignal = (signal: string) => {
    running.deps.logger.log("info", "shutting down", {
      signal,
      drainTimeoutMs: config.shutdown.drainTimeoutMs,
    });
    running.stop().then(
      () => {
        running.deps.logger.flush?.();
        process.exit(0);
      },
      () => {
        running.deps.logger.flush?.();
        process.exit(1);
      },
    );
  };
  // A last line of defence: a library promise nobody handled must not end the process (Node's
  // default), which would take the pull path of every node with it. It is logged as a bug.
  process.on("unhandledRejection", (reason) => {
    running.deps.logger.log("error", "unhandled rejection", {
      code: (reason as { code?: unknown })?.code,
      stack: (reason as Error)?.stack,
    });
  });
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
  return undefined;
}
