import { createServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { getRequestListener } from "@hono/node-server";
import { type Apps, createApps, createDeps, type Deps, type DepsOverrides } from "../app.ts";
import type { Config, ListenAddress, TlsConfig } from "../config/index.ts";
import { policyWarnings } from "../config/index.ts";
import { OciError, renderError } from "../oci/index.ts";
import type { Logger } from "../telemetry/index.ts";
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
  options: Pick<DepsOverrides, "logger" | "redisReconcileMs" | "trustRootReloadIntervalMs"> = {},
): Promise<RunningPullgate> {
  const deps = await createDeps(config, options);
  const apps = createApps(deps);
  let proxy: Server;
  let admin: Server;
  let stopWatching = () => {};
  try {
    const p = await listen(
      "proxy",
      apps.proxy,
      config.listen,
      config.tls ? { config: config.tls, logger: deps.logger } : undefined,
    );
    proxy = p.server;
    stopWatching = p.stopWatching;
    try {
      admin = (await listen("admin", apps.admin, config.admin.listen)).server;
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
  deps.state.proxyHosts = hostsOf(proxy);
  // What will happen, said once at start: every configured project and its mode, the admin API's
  // auth, Redis.
  deps.logger.log("info", "ready", summaryOf(config));
  for (const warning of policyWarnings(config)) deps.logger.log("warn", "policy warning", { warning });
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

/** A listener that could not start: which one, where, and why (EADDRINUSE: the port is taken). */
export class ListenError extends Error {
  readonly code: string | undefined;
  constructor(which: "proxy" | "admin", address: ListenAddress, cause: unknown) {
    const code = (cause as { code?: unknown }).code;
    const where = `${address.host.includes(":") ? `[${address.host}]` : address.host}:${address.port}`;
    const why =
      code === "EADDRINUSE"
        ? "the address is already in use (another pullgate, or another server on that port)"
        : code === "EACCES"
          ? "permission denied (ports below 1024 need privileges)"
          : code === "EADDRNOTAVAIL"
            ? "no interface has that address"
            : (cause as Error).message;
    const setting = which === "proxy" ? "listen" : "admin.listen";
    super(
      `cannot listen on ${where} for the ${which} (${setting}): ${why}${typeof code === "string" ? ` (${code})` : ""}`,
    );
    this.name = "ListenError";
    this.code = typeof code === "string" ? code : undefined;
  }
}

function listen(
  which: "proxy" | "admin",
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
    const fail = (err: unknown) => {
      stopWatching();
      reject(new ListenError(which, address, err));
    };
    server.once("error", fail);
    server.listen(address.port, address.host, () => {
      server.off("error", fail);
      resolve({ server, stopWatching });
    });
  });
}

/** The names clients reach the proxy by (host:port), as a dry-run reference may spell them. */
function hostsOf(server: Server): string[] {
  const a = server.address() as AddressInfo;
  const any = a.address === "0.0.0.0" || a.address === "::";
  const loopback = any || a.address === "127.0.0.1" || a.address === "::1";
  const hosts = [a.family === "IPv6" ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`];
  if (loopback) hosts.push(`localhost:${a.port}`, `127.0.0.1:${a.port}`);
  return hosts;
}

function summaryOf(config: Config): Record<string, unknown> {
  return {
    projects: Object.fromEntries(Object.entries(config.projects).map(([name, p]) => [name, p.mode])),
    defaultsMode: config.defaults.mode,
    adminApi:
      config.admin.token || config.admin.jwt
        ? {
            auth: [config.admin.token ? "token" : undefined, config.admin.jwt ? "jwt" : undefined].filter(
              Boolean,
            ),
          }
        : "read-only health and metrics (no admin.token or admin.jwt: the policy API is off)",
    redis: config.redis
      ? "configured (verdicts and runtime policies shared by every replica)"
      : "none (verdicts in memory only; runtime policy changes are not kept)",
    clientAuth: config.clientAuth.htpasswd ? "htpasswd" : config.clientAuth.jwt ? "jwt" : "none",
  };
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
