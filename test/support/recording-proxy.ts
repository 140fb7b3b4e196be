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
import type { AddressInfo } from "node:net";

/**
 * A forwarding HTTP/1.1 proxy in front of a real registry that records every request's headers (what
 * the upstream sees from pullgate), on two free 127.0.0.1 ports (`url` and `otherUrl`: two origins,
 * for redirects to another origin). Per path (the request target without its query) it can instead
 * answer a redirect, or hold a body: send its first bytes, then the rest only when released.
 */
export type RecordingProxy = {
  url: string;
  otherUrl: string;
  /** Every request received, in order (either port). */
  readonly requests: RecordedRequest[];
  /** The next GET of `path` gets its headers and the first `afterBytes` bytes, the rest on release(). */
  hold(path: string, afterBytes: number): HeldBody;
  /** The next GET of `path` is answered 307 to `location`. */
  redirect(path: string, location: string): void;
  close(): Promise<void>;
};

export type RecordedRequest = { origin: string; method: string; url: string; headers: IncomingHttpHeaders };

export type HeldBody = {
  /** Resolves once the first bytes have been written (to pullgate). */
  readonly started: Promise<void>;
  release(): void;
  /** Resolves when the connection closed before the body was complete (pullgate cut it). */
  readonly cut: Promise<void>;
};

const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "host"]);

export async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const upstream = new URL(target);
  const agent = new Agent({ keepAlive: true });
  const requests: RecordedRequest[] = [];
  const holds = new Map<string, { afterBytes: number; body: HeldBody; arm: Arm }>();
  const redirects = new Map<string, string>();

  const send = (req: IncomingMessage, onResponse: (res: IncomingMessage) => void, onError: () => void) => {
    const up = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: withoutHopByHop(req.headers, upstream.host),
        agent,
      },
      onResponse,
    );
    up.on("error", onError);
    up.end();
  };

  const handle = (origin: () => string) => (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?", 1)[0] ?? "/";
    requests.push({ origin: origin(), method: req.method ?? "", url: req.url ?? "", headers: req.headers });
    const location = req.method === "GET" ? redirects.get(path) : undefined;
    if (location) {
      redirects.delete(path);
      res.writeHead(307, { location, "content-length": "0" }).end();
      return;
    }
    const held = req.method === "GET" ? holds.get(path) : undefined;
    if (held) holds.delete(path);
    send(
      req,
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, withoutHopByHop(upRes.headers));
        if (held) playHeld(upRes, res, held.afterBytes, held.arm);
        else upRes.pipe(res);
      },
      () => res.destroy(),
    );
  };

  const listen = async (server: Server) => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };
  let url = "";
  let otherUrl = "";
  const main = createServer(handle(() => url));
  const other = createServer(handle(() => otherUrl));
  url = await listen(main);
  otherUrl = await listen(other);

  return {
    url,
    otherUrl,
    requests,
    hold(path, afterBytes) {
      const { body, arm } = heldBody();
      holds.set(path, { afterBytes, body, arm });
      return body;
    },
    redirect(path, location) {
      redirects.set(path, location);
    },
    async close() {
      agent.destroy();
      for (const server of [main, other]) {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    },
  };
}

type Arm = { started(): void; released: Promise<void>; cut(): void };

function heldBody(): { body: HeldBody; arm: Arm } {
  const started = Promise.withResolvers<void>();
  const released = Promise.withResolvers<void>();
  const cut = Promise.withResolvers<void>();
  return {
    body: { started: started.promise, release: () => released.resolve(), cut: cut.promise },
    arm: { started: () => started.resolve(), released: released.promise, cut: () => cut.resolve() },
  };
}

/** The upstream body read whole, its first `afterBytes` written at once, the rest once released. */
function playHeld(upRes: IncomingMessage, res: ServerResponse, afterBytes: number, arm: Arm): void {
  const chunks: Buffer[] = [];
  upRes.on("data", (c: Buffer) => chunks.push(c));
  upRes.on("end", () => {
    const body = Buffer.concat(chunks);
    res.on("close", () => {
      if (!res.writableFinished) arm.cut();
    });
    res.write(body.subarray(0, afterBytes), () => arm.started());
    void arm.released.then(() => {
      if (!res.destroyed) res.end(body.subarray(afterBytes));
    });
  });
}

function withoutHopByHop(headers: IncomingHttpHeaders, host?: string): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  if (host) out.host = host;
  return out;
}
