import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";

export type ReceivedWebhook = {
  path: string;
  headers: IncomingHttpHeaders;
  /** The body, parsed as JSON (undefined when it is not JSON). */
  json: unknown;
  at: number;
  /** The status it was answered with. */
  status: number;
};

export type WebhookReceiver = {
  /** "http://127.0.0.1:PORT" */
  url: string;
  /** Every request, in arrival order. */
  readonly received: ReceivedWebhook[];
  /** The requests to one path. */
  to(path: string): ReceivedWebhook[];
  /** The next requests to `path` are answered with these statuses (then 200 again). */
  answer(path: string, ...answers: Array<number | { status: number; retryAfter?: string }>): void;
  close(): Promise<void>;
};

/** An HTTP receiver for alert webhooks on a free 127.0.0.1 port: records each POST, answers 200 (or as told). */
export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  const answers = new Map<string, Array<{ status: number; retryAfter?: string }>>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const path = req.url ?? "/";
      const text = Buffer.concat(chunks).toString("utf8");
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      const next = answers.get(path)?.shift() ?? { status: 200 };
      received.push({ path, headers: req.headers, json, at: Date.now(), status: next.status });
      const headers: Record<string, string> = { "content-type": "text/plain" };
      if (next.retryAfter !== undefined) headers["retry-after"] = next.retryAfter;
      res.writeHead(next.status, headers);
      res.end(next.status < 300 ? "ok" : "try again");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    to: (path) => received.filter((r) => r.path === path),
    answer(path, ...list) {
      const queue = answers.get(path) ?? [];
      for (const a of list) queue.push(typeof a === "number" ? { status: a } : a);
      answers.set(path, queue);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
