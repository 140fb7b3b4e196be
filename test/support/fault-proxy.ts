import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo, Socket } from "node:net";

/**
 * A fault-injecting HTTP/1.1 proxy in front of a real registry, for failure tests: an http server on a
 * free 127.0.0.1 port that forwards every request to `target` (e.g. a docker-registry), unless a rule
 * matches (method + path regex, optionally only the first `times` matching requests). Rules can:
 *
 *  - `delay-headers`: hold the request `ms` before forwarding it (nothing is sent meanwhile);
 *  - `drip`: send the upstream's headers (chunked, no Content-Length) and then ONE byte every `intervalMs`,
 *    forever: the real body first, then spaces. Never ends by itself; a body-idle timeout never fires;
 *  - `reset`: send the headers and `afterBytes` bytes of the body, then a TCP RST; without `afterBytes`, the
 *    RST comes before anything is sent;
 *  - `status`: answer `status` with an OCI error body (code TOOMANYREQUESTS for 429, else UNAVAILABLE), or
 *    with `body: "html"` the kind of page a load balancer sends; `retryAfter` becomes Retry-After;
 *  - `wrong-length`: the real body with `Content-Length: real + delta` (delta > 0: the body is shorter than
 *    claimed; delta < 0: longer, the rest arrives as garbage on a keep-alive connection), then the connection
 *    is closed;
 *  - `corrupt`: the real headers and a body of the same length with other bytes (it no longer hashes to its
 *    digest, and JSON no longer parses);
 *  - `redirect-loop`: `302` with `Location` = the request's own URL;
 *  - `huge-length`: the real headers with `Content-Length: 4 GiB` (or `bytes`), the real body, then either
 *    close the connection or hang (send nothing more, keep it open).
 *
 * Everything is counted: requests, connections (open now, ever), sockets on which a fault is still being
 * played (a drip, a hang, a delay), and per rule its hits and whether the client (the proxy's only client is
 * pullgate in the tests) closed the connection before the fault ended. The proxy's own keep-alive timeout is
 * long (10 min), so that a connection that goes away was closed by the client, not by the proxy.
 */

export type FaultAction =
  | { kind: "delay-headers"; ms: number }
  | { kind: "drip"; intervalMs: number }
  | { kind: "reset"; afterBytes?: number }
  | { kind: "status"; status: number; retryAfter?: string; body?: "oci" | "html" }
  | { kind: "wrong-length"; delta: number }
  | { kind: "corrupt" }
  | { kind: "redirect-loop" }
  | { kind: "huge-length"; bytes?: number; after: "close" | "hang" };

export type FaultRule = {
  /** "GET", "HEAD", …; any method when absent. */
  method?: string;
  /** Tested against the request target as received (path and query). */
  path: RegExp;
  action: FaultAction;
  /** Only the first `times` matching requests get the fault; every matching request when absent. */
  times?: number;
};

export type FaultHit = {
  method: string;
  url: string;
  /** The connection closed before the fault was over (the client gave up on it). */
  closedByClient: boolean;
  /** The proxy finished playing the fault (sent everything it meant to, or closed the connection itself). */
  finished: boolean;
};

export type ActiveRule = {
  readonly rule: FaultRule;
  /** Matching requests that got the fault. */
  readonly hits: FaultHit[];
  remove(): void;
};

export type ProxiedRequest = { method: string; url: string; fault: FaultAction["kind"] | undefined };

export type FaultProxy = {
  /** "http://127.0.0.1:PORT" */
  url: string;
  port: number;
  /** Adds a rule (after the existing ones: the first matching rule wins). */
  add(rule: FaultRule): ActiveRule;
  /** Removes every rule; faults in progress keep playing until their connection closes. */
  clear(): void;
  /** Every request received, in order. */
  readonly requests: readonly ProxiedRequest[];
  /** Connections open now. */
  openConnections(): number;
  /** Connections ever accepted. */
  readonly connectionsTotal: number;
  /** Connections with a request whose response is not finished (a fault in progress, or a slow forward). */
  busyConnections(): number;
  /** Connections a fault still holds (dripping, hanging, delaying). */
  heldConnections(): number;
  /** Stops listening and cuts every connection: the upstream is dead (connection refused). */
  halt(): Promise<void>;
  /** Listens again on the same port. */
  restart(): Promise<void>;
  close(): Promise<void>;
};

export const FOUR_GIB = 4 * 1024 * 1024 * 1024;

type ConnState = { socket: Socket; inflight: number; held: number; open: Set<FaultHit> };

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target);
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const rules: Array<{ rule: FaultRule; hits: FaultHit[]; removed: boolean }> = [];
  const requests: ProxiedRequest[] = [];
  const conns = new Map<Socket, ConnState>();
  const timers = new Set<NodeJS.Timeout>();
  let connectionsTotal = 0;

  const later = (ms: number, fn: () => void): NodeJS.Timeout => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
    return t;
  };

  /** The upstream's answer, read whole (registry answers in the tests are small). */
  const fetchUpstream = (
    req: IncomingMessage,
    method = req.method ?? "GET",
  ): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const up = httpRequest(
        {
          host: upstream.hostname,
          port: upstream.port,
          method,
          path: req.url,
          headers: forwardHeaders(req.headers, upstream.host),
          agent,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }),
          );
          res.on("error", reject);
        },
      );
      up.on("error", reject);
      up.end();
    });

  /** Plain forwarding, streamed both ways. */
  const forward = (req: IncomingMessage, res: ServerResponse): void => {
    const up = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: forwardHeaders(req.headers, upstream.host),
        agent,
      },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, responseHeaders(upRes.headers));
        upRes.pipe(res);
        upRes.on("error", () => res.destroy());
      },
    );
    up.on("error", () => {
      if (!res.headersSent) {
        res.writeHead(502, { "content-type": "text/plain" });
        res.end("fault proxy: upstream error");
      } else res.destroy();
    });
    res.on("close", () => up.destroy());
    if (req.method === "GET" || req.method === "HEAD" || req.readableEnded) up.end();
    else req.pipe(up);
  };

  const play = async (
    action: FaultAction,
    hit: FaultHit,
    req: IncomingMessage,
    res: ServerResponse,
    state: ConnState,
  ): Promise<void> => {
    const socket = state.socket;
    let holding = false;
    const hold = () => {
      if (holding) return;
      holding = true;
      state.held++;
    };
    const release = () => {
      if (!holding) return;
      holding = false;
      state.held--;
    };
    const finish = () => {
      hit.finished = true;
      state.open.delete(hit);
      release();
    };
    // On close, the connection's state goes away (held counts with it); unfinished hits are marked there.
    state.open.add(hit);
    const isHead = req.method === "HEAD";
    switch (action.kind) {
      case "delay-headers": {
        hold();
        later(action.ms, () => {
          finish();
          if (!socket.destroyed) forward(req, res);
        });
        return;
      }
      case "status": {
        const html = action.body === "html";
        const code = action.status === 429 ? "TOOMANYREQUESTS" : "UNAVAILABLE";
        const body = Buffer.from(
          html
            ? `<html><body><h1>${action.status} injected by the fault proxy</h1></body></html>`
            : JSON.stringify({ errors: [{ code, message: `fault proxy: injected ${action.status}` }] }),
        );
        const headers: OutgoingHttpHeaders = {
          "content-type": html ? "text/html" : "application/json",
          "content-length": body.length,
          "docker-distribution-api-version": "registry/2.0",
        };
        if (action.retryAfter !== undefined) headers["retry-after"] = action.retryAfter;
        res.writeHead(action.status, headers);
        res.end(isHead ? undefined : body);
        finish();
        return;
      }
      case "redirect-loop": {
        res.writeHead(302, { location: req.url ?? "/", "content-length": 0 });
        res.end();
        finish();
        return;
      }
      case "reset": {
        if (action.afterBytes === undefined) {
          finish();
          socket.resetAndDestroy();
          return;
        }
        const up = await fetchUpstream(req);
        res.writeHead(up.status, responseHeaders(up.headers));
        res.flushHeaders();
        if (!isHead && action.afterBytes > 0) res.write(up.body.subarray(0, action.afterBytes));
        later(50, () => {
          finish();
          if (!socket.destroyed) socket.resetAndDestroy();
        });
        return;
      }
      case "drip": {
        const up = await fetchUpstream(req);
        const headers = responseHeaders(up.headers);
        delete headers["content-length"];
        res.writeHead(up.status, headers);
        res.flushHeaders();
        if (isHead) {
          res.end();
          finish();
          return;
        }
        hold();
        let i = 0;
        const timer = setInterval(() => {
          if (socket.destroyed) {
            clearInterval(timer);
            timers.delete(timer);
            return;
          }
          res.write(i < up.body.length ? up.body.subarray(i, i + 1) : " ");
          i++;
        }, action.intervalMs);
        timers.add(timer);
        return;
      }
      case "corrupt": {
        const up = await fetchUpstream(req);
        const body = Buffer.from(up.body);
        for (let j = 0; j < body.length; j++) body[j] = (body[j] as number) ^ 0x01;
        res.writeHead(up.status, responseHeaders(up.headers));
        res.end(isHead ? undefined : body);
        finish();
        return;
      }
      case "wrong-length": {
        const up = await fetchUpstream(req);
        const headers = responseHeaders(up.headers);
        headers["content-length"] = String(Math.max(0, up.body.length + action.delta));
        // Node refuses to send a body that disagrees with Content-Length: write the raw response.
        socket.write(rawHead(up.status, headers));
        if (!isHead) socket.write(up.body);
        later(50, () => {
          finish();
          socket.destroy();
        });
        return;
      }
      case "huge-length": {
        const up = await fetchUpstream(req);
        const headers = responseHeaders(up.headers);
        headers["content-length"] = String(action.bytes ?? FOUR_GIB);
        socket.write(rawHead(up.status, headers));
        if (isHead) {
          finish();
          socket.destroy();
          return;
        }
        socket.write(up.body);
        if (action.after === "close") {
          later(50, () => {
            finish();
            socket.destroy();
          });
        } else hold(); // sends nothing more, until the client gives up (or the proxy closes)
        return;
      }
    }
  };

  const server: Server = createServer((req, res) => {
    const state = conns.get(req.socket);
    const method = req.method ?? "GET";
    const url = req.url ?? "/";
    const entry = rules.find(
      (r) =>
        !r.removed &&
        (r.rule.method === undefined || r.rule.method === method) &&
        r.rule.path.test(url) &&
        (r.rule.times === undefined || r.hits.length < r.rule.times),
    );
    requests.push({ method, url, fault: entry?.rule.action.kind });
    if (state) {
      state.inflight++;
      res.once("close", () => {
        state.inflight--;
      });
    }
    if (!entry || !state) {
      forward(req, res);
      return;
    }
    const hit: FaultHit = { method, url, closedByClient: false, finished: false };
    entry.hits.push(hit);
    req.resume();
    play(entry.rule.action, hit, req, res, state).catch(() => {
      hit.finished = true;
      req.socket.destroy();
    });
  });
  server.keepAliveTimeout = 600_000;
  server.headersTimeout = 600_000;
  server.requestTimeout = 0;
  server.on("connection", (socket: Socket) => {
    connectionsTotal++;
    const state: ConnState = { socket, inflight: 0, held: 0, open: new Set() };
    conns.set(socket, state);
    socket.once("close", () => {
      for (const hit of state.open) hit.closedByClient = true;
      state.open.clear();
      conns.delete(socket);
    });
  });
  // A client that resets mid-request must not take the proxy down.
  server.on("clientError", (_err, socket) => socket.destroy());

  const listen = (port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host: "127.0.0.1", port }, () => {
        server.off("error", reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  const port = await listen(0);

  const cutAll = () => {
    for (const t of timers) {
      clearTimeout(t);
      clearInterval(t);
    }
    timers.clear();
    for (const socket of conns.keys()) socket.destroy();
  };
  const halt = async () => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    cutAll();
    await closed;
  };

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    add(rule) {
      const entry = { rule, hits: [] as FaultHit[], removed: false };
      rules.push(entry);
      return {
        rule,
        hits: entry.hits,
        remove: () => {
          entry.removed = true;
        },
      };
    },
    clear() {
      for (const r of rules) r.removed = true;
      rules.length = 0;
    },
    requests,
    openConnections: () => conns.size,
    get connectionsTotal() {
      return connectionsTotal;
    },
    busyConnections: () => [...conns.values()].filter((c) => c.inflight > 0).length,
    heldConnections: () => [...conns.values()].filter((c) => c.held > 0).length,
    halt,
    restart: async () => {
      await listen(port);
    },
    close: async () => {
      if (server.listening) await halt();
      agent.destroy();
    },
  };
}

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
]);

function forwardHeaders(headers: IncomingHttpHeaders, host: string): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  out.host = host;
  return out;
}

function responseHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

function rawHead(status: number, headers: Record<string, string | string[]>): string {
  const lines = [`HTTP/1.1 ${status} ${status === 200 ? "OK" : "Fault"}`];
  for (const [k, v] of Object.entries(headers)) {
    for (const value of Array.isArray(v) ? v : [v]) lines.push(`${k}: ${value}`);
  }
  return `${lines.join("\r\n")}\r\n\r\n`;
}
