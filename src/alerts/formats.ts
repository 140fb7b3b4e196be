import { OTHER_PROJECT } from "../telemetry/index.ts";
import type { AlertEntry } from "./types.ts";

/** The version of the generic JSON payload; a change that is not an added field changes it. */
export const ALERT_PAYLOAD_VERSION = 1;

/** One alert as the generic JSON payload carries it (README "Alerts"). */
export interface AlertPayloadEntry {
  event: AlertEntry["event"];
  project: string;
  upstream: string;
  repository?: string;
  digest?: string;
  /** Project `_other` (outside the configuration): the first image folded into this alert. */
  example?: string;
  reason: string;
  detail?: string;
  count: number;
  firstSeen: string;
  lastSeen: string;
}

export interface AlertPayload {
  version: typeof ALERT_PAYLOAD_VERSION;
  source: "pullgate";
  webhook: string;
  sentAt: string;
  /** Alerts dropped (queue full) since the previous message to this webhook. */
  dropped: number;
  alerts: AlertPayloadEntry[];
}

/** Details are words from the decision; long ones are cut. */
const MAX_DETAIL = 300;

function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

export function jsonPayload(
  webhook: string,
  entries: readonly AlertEntry[],
  dropped: number,
  now: number,
): AlertPayload {
  return {
    version: ALERT_PAYLOAD_VERSION,
    source: "pullgate",
    webhook,
    sentAt: new Date(now).toISOString(),
    dropped,
    alerts: entries.map((e) => ({
      event: e.event,
      project: e.project,
      upstream: e.upstream,
      ...(e.repository !== undefined ? { repository: e.repository } : {}),
      ...(e.digest !== undefined ? { digest: e.digest } : {}),
      ...(e.example !== undefined ? { example: cut(e.example, MAX_DETAIL) } : {}),
      reason: e.reason,
      ...(e.detail !== undefined ? { detail: cut(e.detail, MAX_DETAIL) } : {}),
      count: e.count,
      firstSeen: new Date(e.firstSeen).toISOString(),
      lastSeen: new Date(e.lastSeen).toISOString(),
    })),
  };
}

/** Slack's mrkdwn control characters. */
function esc(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Inline code, as far as mrkdwn allows (no backticks inside). */
function code(text: string): string {
  return `\`${esc(text.replace(/`/g, "'"))}\``;
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

function timeSpan(e: AlertEntry): string {
  const first = new Date(e.firstSeen).toISOString();
  if (e.lastSeen === e.firstSeen) return `at ${first}`;
  return `from ${first} to ${new Date(e.lastSeen).toISOString()}`;
}

/** One alert as one mrkdwn line. */
export function slackLine(e: AlertEntry): string {
  const detail = e.detail ? `: ${esc(cut(e.detail, MAX_DETAIL))}` : "";
  if (e.event === "unavailable")
    return `*Signatures unavailable* in project ${code(e.project)} on upstream ${code(e.upstream)}: ${plural(e.count, "decision", "decisions")} could not look up signatures (${code(e.reason)}) ${timeSpan(e)}`;
  const what = e.event === "deny" ? "*Denied*" : "*Would deny* (audit mode)";
  const example = e.example === undefined ? "" : ` (e.g. ${code(cut(e.example, MAX_DETAIL))})`;
  const image =
    e.example === undefined
      ? code(`${e.repository ?? "?"}@${e.digest ?? "?"}`)
      : e.project === OTHER_PROJECT
        ? `images outside the configured projects${example}`
        : `images${example}`;
  return `${what} ${image} in project ${code(e.project)}, ${code(e.reason)}${detail}: ${plural(e.count, "pull", "pulls")} ${timeSpan(e)}`;
}

/** Slack allows 50 blocks a message: a header, up to this many alerts, a footer. */
const MAX_SLACK_ALERT_BLOCKS = 45;

/** A Slack incoming-webhook message: `text` has every alert (the notification), `blocks` the same as sections. */
export function slackPayload(
  entries: readonly AlertEntry[],
  dropped: number,
): { text: string; blocks: Array<Record<string, unknown>> } {
  const decisions = entries.reduce((n, e) => n + e.count, 0);
  const header = `pullgate: ${plural(entries.length, "alert", "alerts")} (${plural(decisions, "decision", "decisions")})`;
  const lines = entries.map(slackLine);
  const footer: string[] = [];
  if (entries.length > MAX_SLACK_ALERT_BLOCKS)
    footer.push(`${entries.length - MAX_SLACK_ALERT_BLOCKS} more alerts in this message's text`);
  if (dropped > 0)
    footer.push(`${plural(dropped, "alert", "alerts")} dropped (queue full) since the last message`);
  const text = [header, ...lines.map((l) => `• ${l}`), ...footer].join("\n");
  const section = (t: string) => ({ type: "section", text: { type: "mrkdwn", text: cut(t, 3000) } });
  const blocks: Array<Record<string, unknown>> = [
    section(`*${esc(header)}*`),
    ...lines.slice(0, MAX_SLACK_ALERT_BLOCKS).map(section),
  ];
  if (footer.length > 0)
    blocks.push({ type: "context", elements: [{ type: "mrkdwn", text: cut(footer.join(" · "), 3000) }] });
  return { text, blocks };
}

/** The request body of one message. */
export function renderPayload(
  format: "json" | "slack",
  webhook: string,
  entries: readonly AlertEntry[],
  dropped: number,
  now: number,
): string {
  return JSON.stringify(
    format === "slack" ? slackPayload(entries, dropped) : jsonPayload(webhook, entries, dropped, now),
  );
}
