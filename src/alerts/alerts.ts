import type { AlertsConfig, AlertWebhookConfig } from "../config/types.ts";
import {
  type AuditSink,
  type Logger,
  type ManifestDecisionRecord,
  OTHER_PROJECT,
} from "../telemetry/index.ts";
import { renderPayload } from "./formats.ts";
import { createWebhookTransport, type WebhookTransport } from "./transport.ts";
import type { AlertEntry } from "./types.ts";
import { UnavailableBursts } from "./unavailable-bursts.ts";
import { WebhookQueue, type WebhookQueueStats } from "./webhook-queue.ts";

export const SIGNATURE_UNAVAILABLE = "SIGNATURE_UNAVAILABLE";

export interface Alerts {
  /** Registered in createDeps' audit sinks: classifies each decision and queues it; never waits. */
  readonly sink: AuditSink;
  /** Per webhook name. */
  stats(): Record<string, WebhookQueueStats>;
  /** Stops the timers, sends what is queued (bounded by shutdownFlushMs), closes the connections. */
  stop(): Promise<void>;
}

export interface AlertsDeps {
  logger: Logger;
  /**
   * Whether a project is the configuration's (config file or runtime override): alerts of any other fold
   * into project `_other`, one per (event, upstream, reason). Default: every project is.
   */
  knownProject?: (project: string) => boolean;
  /** Tests: another transport (default: undici on a pool of its own). */
  transport?: WebhookTransport;
  /** Tests: retry backoff (default 1 s doubling up to 60 s) and its jitter. */
  retry?: { initialDelayMs: number; maxDelayMs: number };
  random?: () => number;
}

/**
 * What a decision is to the alerts: deny and would-deny alerts per image; any SIGNATURE_UNAVAILABLE
 * decision (deny, would-deny, or an allow under onLookupError: allow) counts towards its (project,
 * upstream)'s burst instead, and only bursts alert.
 */
export function alertOf(
  record: ManifestDecisionRecord,
  bursts: UnavailableBursts,
  now: number,
  knownProject: (project: string) => boolean = () => true,
): AlertEntry | undefined {
  const known = knownProject(record.project);
  const project = known ? record.project : OTHER_PROJECT;
  if (record.reason === SIGNATURE_UNAVAILABLE) {
    // Bursts of projects outside the configuration count together: their names cannot evict a real one.
    const burst = bursts.observe(project, record.upstream, now);
    if (!burst) return undefined;
    return {
      event: "unavailable",
      project,
      upstream: record.upstream,
      reason: SIGNATURE_UNAVAILABLE,
      count: burst.count,
      firstSeen: burst.firstSeen,
      lastSeen: now,
    };
  }
  if (record.outcome !== "deny" && record.outcome !== "would-deny") return undefined;
  const image = known
    ? { repository: record.repository, digest: record.digest }
    : { example: `${record.repository}@${record.digest}` };
  return {
    event: record.outcome,
    project,
    upstream: record.upstream,
    ...image,
    reason: record.reason ?? "DENIED",
    detail: record.detail,
    count: 1,
    firstSeen: now,
    lastSeen: now,
  };
}

function wants(webhook: AlertWebhookConfig, alert: AlertEntry): boolean {
  return (
    webhook.events.includes(alert.event) &&
    (webhook.projects === undefined || webhook.projects.includes(alert.project))
  );
}

/** The alert webhooks of the config, or undefined when there are none (then nothing is registered). */
export function createAlerts(config: AlertsConfig, deps: AlertsDeps): Alerts | undefined {
  if (config.webhooks.length === 0) return undefined;
  const transport = deps.transport ?? createWebhookTransport();
  const bursts = new UnavailableBursts(config.unavailable);
  const webhooks = config.webhooks.map((webhook) => ({
    webhook,
    queue: new WebhookQueue({
      name: webhook.name,
      batchMs: webhook.batchMs,
      minIntervalMs: webhook.minIntervalMs,
      maxBatchSize: webhook.maxBatchSize,
      queueSize: webhook.queueSize,
      giveUpMs: webhook.giveUpMs,
      logger: deps.logger,
      ...(deps.retry ? { retry: deps.retry } : {}),
      ...(deps.random ? { random: deps.random } : {}),
      send: (entries, dropped, signal) =>
        transport.post({
          url: webhook.url.reveal(),
          headers: Object.fromEntries(Object.entries(webhook.headers).map(([k, v]) => [k, v.reveal()])),
          body: renderPayload(webhook.format, webhook.name, entries, dropped, Date.now()),
          timeoutMs: webhook.timeoutMs,
          signal,
        }),
    }),
  }));
  deps.logger.log("info", "alerts on", {
    webhooks: config.webhooks.map((w) => ({
      name: w.name,
      format: w.format,
      events: w.events,
      ...(w.projects ? { projects: w.projects } : {}),
    })),
  });
  let stopping: Promise<void> | undefined;
  return {
    sink: {
      decision(record) {
        const alert = alertOf(record, bursts, Date.now(), deps.knownProject);
        if (!alert) return;
        for (const { webhook, queue } of webhooks) if (wants(webhook, alert)) queue.add(alert);
      },
    },
    stats: () => Object.fromEntries(webhooks.map(({ queue }) => [queue.name, queue.stats()])),
    stop() {
      stopping ??= (async () => {
        await Promise.all(webhooks.map(({ queue }) => queue.stop(config.shutdownFlushMs)));
        await transport.close();
      })();
      return stopping;
    },
  };
}
