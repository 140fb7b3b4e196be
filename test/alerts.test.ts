import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AlertPayload } from "../src/alerts/index.ts";
import { createTinyImage, pushArtifact, waitFor } from "../src/local/index.ts";
import { type FaultProxy, startFaultProxy } from "./support/fault-proxy.ts";
import { startTestPullgate, type TestPullgate } from "./support/pullgate.ts";
import { type Registry, startRegistry } from "./support/registry.ts";
import { generateTestKey, RegistryWriter, type TestKey } from "./support/signer.ts";
import {
  type ReceivedWebhook,
  startWebhookReceiver,
  type WebhookReceiver,
} from "./support/webhook-receiver.ts";

// Issue 12, "Alerts": a real pullgate in front of a real docker-registry (through a fault proxy, to fail
// signature lookups on demand), with alert webhooks pointing at a local HTTP receiver. Every image here is
// unsigned: in enforce mode it is denied, in audit mode served with a would-deny.

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const ACCEPT = `${OCI_MANIFEST}, application/vnd.oci.image.index.v1+json`;
/** Part of every webhook URL: a webhook URL may carry a secret (Slack's do), and it must never be logged. */
const URL_SECRET = "s3cr3t-path-T0KEN";
const HEADER_TOKEN = "Bearer alert-header-t0ken";
const PATHS = {
  everything: `/everything/${URL_SECRET}`,
  flaky: `/flaky/${URL_SECRET}`,
  chat: `/chat/${URL_SECRET}`,
  final: `/final/${URL_SECRET}`,
};

let registry: Registry;
let proxy: FaultProxy;
let writer: RegistryWriter;
let key: TestKey;
let receiver: WebhookReceiver;
let pg: TestPullgate;
let imageCount = 0;

/** A small unsigned OCI image pushed straight to the registry; its manifest digest. */
async function pushImage(repository: string, tag = "v1"): Promise<string> {
  const image = createTinyImage("hello.txt", `alerts image ${++imageCount} ${repository}\n`);
  await pushArtifact(writer, repository, tag, image);
  return image.manifestDigest;
}

async function pull(target: TestPullgate, repository: string, tag = "v1"): Promise<number> {
  const res = await fetch(`${target.proxyUrl}/v2/${repository}/manifests/${tag}`, {
    headers: { accept: ACCEPT },
    signal: AbortSignal.timeout(20_000),
  });
  await res.arrayBuffer();
  return res.status;
}

function projectsYaml(pem: string): string {
  const keys = `keys: [{ name: release, pem: ${JSON.stringify(pem)}, transparencyLog: optional }]`;
  return `projects:
  proj: { mode: enforce, ${keys} }
  aud: { mode: audit, ${keys} }
  flaky: { mode: enforce, ${keys} }
  una: { mode: enforce, ${keys} }
verification: { lookupTimeoutMs: 3000 }
`;
}

/** Every alert the generic webhook `path` received, with the message it came in. */
function alertsAt(path: string): Array<{ message: ReceivedWebhook; alert: AlertPayload["alerts"][number] }> {
  return receiver
    .to(path)
    .filter((m) => m.status === 200)
    .flatMap((message) => (message.json as AlertPayload).alerts.map((alert) => ({ message, alert })));
}

beforeAll(async () => {
  [registry, receiver] = await Promise.all([startRegistry(), startWebhookReceiver()]);
  proxy = await startFaultProxy(registry.url);
  writer = new RegistryWriter(registry.url);
  key = generateTestKey();
  const alertsYaml = `alerts:
  unavailable: { threshold: 3, windowSeconds: 60 }
  shutdownFlushMs: 3000
  webhooks:
    - name: everything
      urlEnv: ALERT_URL_EVERYTHING
      headersEnv: { Authorization: ALERT_TOKEN }
      batchSeconds: 1.5
      minIntervalSeconds: 0
    - name: flaky
      url: ${JSON.stringify(receiver.url + PATHS.flaky)}
      projects: [flaky]
      batchSeconds: 0.2
      minIntervalSeconds: 0
    - name: chat
      format: slack
      url: ${JSON.stringify(receiver.url + PATHS.chat)}
      projects: [proj]
      events: [deny]
      batchSeconds: 1.5
      minIntervalSeconds: 0
`;
  pg = await startTestPullgate(
    `  - name: local\n    url: "${proxy.url}"\n    timeouts: { totalMs: 3000, headersMs: 2000, bodyIdleMs: 2000 }\n`,
    projectsYaml(key.publicKeyPem) + alertsYaml,
    { env: { ALERT_URL_EVERYTHING: receiver.url + PATHS.everything, ALERT_TOKEN: HEADER_TOKEN } },
  );
});

afterAll(async () => {
  await pg?.stop();
  await Promise.all([proxy?.close(), receiver?.close(), registry?.stop()]);
});

describe("alert webhooks against a local receiver", () => {
  it("50 concurrent pulls of one denied image: one alert with the count, in JSON and in Slack's {text}", async () => {
    const digest = await pushImage("proj/unsigned");
    const statuses = await Promise.all(Array.from({ length: 50 }, () => pull(pg, "proj/unsigned")));
    expect(statuses.every((s) => s === 403)).toBe(true);
    await waitFor(() => alertsAt(PATHS.everything).some((a) => a.alert.digest === digest), {
      timeoutMs: 10_000,
      description: "the deny alert",
    });
    await waitFor(() => receiver.to(PATHS.chat).length > 0, {
      timeoutMs: 10_000,
      description: "the Slack message",
    });
    await new Promise((r) => setTimeout(r, 2_000)); // nothing more comes for these pulls
    const mine = alertsAt(PATHS.everything).filter((a) => a.alert.digest === digest);
    expect(mine).toHaveLength(1);
    const [{ message, alert }] = mine as [(typeof mine)[number]];
    expect(alert).toMatchObject({
      event: "deny",
      project: "proj",
      upstream: "local",
      repository: "proj/unsigned",
      digest,
      reason: "NO_SIGNATURE",
      count: 50,
    });
    expect(Date.parse(alert.lastSeen)).toBeGreaterThanOrEqual(Date.parse(alert.firstSeen));
    expect(message.json).toMatchObject({ version: 1, source: "pullgate", webhook: "everything", dropped: 0 });
    expect(message.headers.authorization).toBe(HEADER_TOKEN);
    expect(message.headers["content-type"]).toMatch(/^application\/json/);

    const chat = receiver.to(PATHS.chat);
    expect(chat).toHaveLength(1);
    const slack = chat[0]?.json as { text: string; blocks: unknown[] };
    expect(Object.keys(slack).sort()).toEqual(["blocks", "text"]);
    expect(slack.text).toContain(`\`proj/unsigned@${digest}\``);
    expect(slack.text).toContain("50 pulls");
    expect(slack.text).toContain("*Denied*");
  });

  it("audit mode: the image is served and the webhook hears of a would-deny", async () => {
    const digest = await pushImage("aud/app");
    expect(await pull(pg, "aud/app")).toBe(200);
    await waitFor(() => alertsAt(PATHS.everything).some((a) => a.alert.digest === digest), {
      timeoutMs: 10_000,
      description: "the would-deny alert",
    });
    expect(alertsAt(PATHS.everything).find((a) => a.alert.digest === digest)?.alert).toMatchObject({
      event: "would-deny",
      project: "aud",
      repository: "aud/app",
      reason: "NO_SIGNATURE",
      count: 1,
    });
    // The Slack webhook takes only denials of `proj`.
    const chatTexts = receiver.to(PATHS.chat).map((m) => (m.json as { text: string }).text);
    expect(chatTexts.join("\n")).not.toContain("aud/app");
  });

  it("a receiver answering 500 then 200 gets the same message again, after a backoff", async () => {
    receiver.answer(PATHS.flaky, 500);
    const digest = await pushImage("flaky/app");
    expect(await pull(pg, "flaky/app")).toBe(403);
    await waitFor(() => receiver.to(PATHS.flaky).length >= 2, {
      timeoutMs: 10_000,
      description: "the retry",
    });
    const [first, second] = receiver.to(PATHS.flaky) as [ReceivedWebhook, ReceivedWebhook];
    expect([first.status, second.status]).toEqual([500, 200]);
    expect((second.json as AlertPayload).alerts).toEqual((first.json as AlertPayload).alerts);
    expect((second.json as AlertPayload).alerts).toEqual([
      expect.objectContaining({ event: "deny", project: "flaky", digest, count: 1 }),
    ]);
    expect(second.at - first.at).toBeGreaterThanOrEqual(450); // the first wait: 0.5–1 s
    expect(pg.logs).toContainEqual(
      expect.objectContaining({ event: "alert delivery failed", webhook: "flaky", status: 500, attempts: 1 }),
    );
    // /metrics counts the retry and the delivery, by webhook name (never its URL).
    const metrics = await (await fetch(`${pg.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/^pullgate_alert_delivery_retries_total\{webhook="flaky"\} [1-9]/m);
    expect(metrics).toMatch(/^pullgate_alerts_sent_total\{webhook="flaky"\} [1-9]/m);
  });

  it("429 with Retry-After: the retry waits as long as asked", async () => {
    receiver.answer(PATHS.flaky, { status: 429, retryAfter: "2" });
    const before = receiver.to(PATHS.flaky).length;
    await pushImage("flaky/other");
    expect(await pull(pg, "flaky/other")).toBe(403);
    await waitFor(() => receiver.to(PATHS.flaky).length >= before + 2, {
      timeoutMs: 10_000,
      description: "the retry after Retry-After",
    });
    const [first, second] = receiver.to(PATHS.flaky).slice(before) as [ReceivedWebhook, ReceivedWebhook];
    expect([first.status, second.status]).toEqual([429, 200]);
    expect(second.at - first.at).toBeGreaterThanOrEqual(1_950);
  });

  it("a burst of failed signature lookups gives one unavailable alert per (project, upstream), not one per image", async () => {
    const digests = [await pushImage("una/app"), await pushImage("una/other")];
    const rule = proxy.add({
      method: "GET",
      path: /^\/v2\/una\/[^/]+\/manifests\/sha256-[0-9a-f]{64}\.sig$/,
      action: { kind: "status", status: 500 },
    });
    try {
      for (let i = 0; i < 5; i++) expect(await pull(pg, i % 2 === 0 ? "una/app" : "una/other")).toBe(503);
    } finally {
      rule.remove();
    }
    await waitFor(() => alertsAt(PATHS.everything).some((a) => a.alert.event === "unavailable"), {
      timeoutMs: 10_000,
      description: "the unavailable alert",
    });
    await new Promise((r) => setTimeout(r, 2_000));
    const unavailable = alertsAt(PATHS.everything).filter((a) => a.alert.event === "unavailable");
    expect(unavailable.map((a) => a.alert.count).reduce((x, y) => x + y, 0)).toBe(5);
    expect(unavailable[0]?.alert).toMatchObject({
      project: "una",
      upstream: "local",
      reason: "SIGNATURE_UNAVAILABLE",
    });
    expect(unavailable[0]?.alert).not.toHaveProperty("digest");
    // No per-image alert for a lookup that failed.
    expect(alertsAt(PATHS.everything).filter((a) => digests.includes(a.alert.digest ?? ""))).toEqual([]);
  });

  it("never logs a webhook's URL or header values; logs name the webhook", () => {
    const logged = JSON.stringify(pg.logs);
    expect(logged).not.toContain(URL_SECRET);
    expect(logged).not.toContain(`${receiver.url}/`);
    expect(logged).not.toContain(HEADER_TOKEN);
    expect(logged).toContain('"webhook":"flaky"');
    expect(pg.logs).toContainEqual(
      expect.objectContaining({
        event: "alerts on",
        webhooks: expect.arrayContaining([expect.objectContaining({ name: "chat", format: "slack" })]),
      }),
    );
  });
});

describe("shutdown", () => {
  it("what is still queued is sent before stop() returns", async () => {
    const other = await startTestPullgate(
      `  - name: local\n    url: "${registry.url}"\n`,
      `${projectsYaml(key.publicKeyPem)}alerts:
  webhooks:
    - { name: final, url: ${JSON.stringify(receiver.url + PATHS.final)}, batchSeconds: 600 }
`,
    );
    try {
      await pushImage("proj/last");
      expect(await pull(other, "proj/last")).toBe(403);
      expect(receiver.to(PATHS.final)).toEqual([]);
    } finally {
      await other.stop();
    }
    const [message, ...more] = receiver.to(PATHS.final);
    expect(more).toEqual([]);
    expect((message?.json as AlertPayload | undefined)?.alerts).toEqual([
      expect.objectContaining({ event: "deny", repository: "proj/last", count: 1 }),
    ]);
  });
});
