import { describe, expect, it } from "vitest";
import { ALERT_PAYLOAD_VERSION, jsonPayload, renderPayload, slackLine, slackPayload } from "./formats.ts";
import type { AlertEntry } from "./types.ts";

const T = Date.parse("2026-03-01T12:00:00Z");
const DIGEST = `sha256:${"ab".repeat(32)}`;

const denied: AlertEntry = {
  event: "deny",
  project: "proj",
  upstream: "local",
  repository: "proj/app",
  digest: DIGEST,
  reason: "NO_SIGNATURE",
  count: 1000,
  firstSeen: T,
  lastSeen: T + 9_000,
};
const audited: AlertEntry = {
  ...denied,
  event: "would-deny",
  project: "aud",
  repository: "aud/app",
  count: 1,
  lastSeen: T,
};
const unavailable: AlertEntry = {
  event: "unavailable",
  project: "proj",
  upstream: "hub",
  reason: "SIGNATURE_UNAVAILABLE",
  count: 12,
  firstSeen: T,
  lastSeen: T + 30_000,
};

describe("the generic JSON payload", () => {
  it("has a version, the webhook's name, the drops, and each alert with its count and times", () => {
    expect(jsonPayload("team", [denied, unavailable], 3, T + 10_000)).toEqual({
      version: ALERT_PAYLOAD_VERSION,
      source: "pullgate",
      webhook: "team",
      sentAt: "2026-03-01T12:00:10.000Z",
      dropped: 3,
      alerts: [
        {
          event: "deny",
          project: "proj",
          upstream: "local",
          repository: "proj/app",
          digest: DIGEST,
          reason: "NO_SIGNATURE",
          count: 1000,
          firstSeen: "2026-03-01T12:00:00.000Z",
          lastSeen: "2026-03-01T12:00:09.000Z",
        },
        {
          event: "unavailable",
          project: "proj",
          upstream: "hub",
          reason: "SIGNATURE_UNAVAILABLE",
          count: 12,
          firstSeen: "2026-03-01T12:00:00.000Z",
          lastSeen: "2026-03-01T12:00:30.000Z",
        },
      ],
    });
  });

  it("cuts long details", () => {
    const p = jsonPayload("team", [{ ...denied, detail: "x".repeat(5_000) }], 0, T);
    expect(p.alerts[0]?.detail?.length).toBe(300);
  });
});

describe("the Slack payload", () => {
  it("is {text, blocks}: every alert in text, one section each", () => {
    const p = slackPayload([denied, audited, unavailable], 0);
    expect(Object.keys(p).sort()).toEqual(["blocks", "text"]);
    const lines = p.text.split("\n");
    expect(lines[0]).toBe("pullgate: 3 alerts (1013 decisions)");
    expect(lines[1]).toContain("*Denied*");
    expect(lines[1]).toContain(`\`proj/app@${DIGEST}\``);
    expect(lines[1]).toContain("1000 pulls");
    expect(lines[1]).toContain("`NO_SIGNATURE`");
    expect(lines[2]).toContain("*Would deny* (audit mode)");
    expect(lines[2]).toContain("1 pull at 2026-03-01T12:00:00.000Z");
    expect(lines[3]).toContain("*Signatures unavailable*");
    expect(lines[3]).toContain("12 decisions");
    expect(p.blocks).toHaveLength(4);
    expect(p.blocks[1]).toEqual({ type: "section", text: { type: "mrkdwn", text: lines[1]?.slice(2) } });
  });

  it("words a folded alert by its example: a configured project's images, or images outside the configuration", () => {
    const { repository: _r, digest: _d, ...project } = denied;
    const inProject = slackLine({ ...project, count: 997, example: "proj/x@sha256:3" });
    expect(inProject).toContain("*Denied* images (e.g. `proj/x@sha256:3`) in project `proj`");
    expect(inProject).toContain("997 pulls");
    const outside = slackLine({ ...project, project: "_other", example: "x0/img@sha256:0" });
    expect(outside).toContain("images outside the configured projects (e.g. `x0/img@sha256:0`)");
    const json = jsonPayload("team", [{ ...project, example: "proj/x@sha256:3" }], 0, T).alerts[0];
    expect(json).toMatchObject({ example: "proj/x@sha256:3" });
    expect(json).not.toHaveProperty("repository");
  });

  it("escapes mrkdwn control characters in what it quotes", () => {
    const p = slackPayload([{ ...denied, detail: "<!channel> & <https://evil|click>" }], 0);
    expect(p.text).not.toContain("<!channel>");
    expect(p.text).toContain("&lt;!channel&gt; &amp; &lt;https://evil|click&gt;");
  });

  it("stays within Slack's 50 blocks and says what was dropped", () => {
    const many = Array.from({ length: 100 }, (_, i) => ({ ...denied, digest: `sha256:${i}` }));
    const p = slackPayload(many, 7);
    expect(p.blocks.length).toBeLessThanOrEqual(50);
    expect(p.text.split("\n")).toHaveLength(1 + 100 + 2);
    expect(p.text).toContain("7 alerts dropped (queue full)");
  });

  it("renderPayload gives the JSON body of either format", () => {
    expect(JSON.parse(renderPayload("slack", "team", [denied], 0, T))).toHaveProperty("text");
    expect(JSON.parse(renderPayload("json", "team", [denied], 0, T))).toHaveProperty("version", 1);
  });
});
