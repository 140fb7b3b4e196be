export { type Alerts, type AlertsDeps, alertOf, createAlerts } from "./alerts.ts";
export { backoffDelay, deliverWithRetry, parseRetryAfter, type RetryPolicy } from "./backoff.ts";
export {
  ALERT_PAYLOAD_VERSION,
  type AlertPayload,
  type AlertPayloadEntry,
  jsonPayload,
  renderPayload,
  slackPayload,
} from "./formats.ts";
export { createWebhookTransport, type WebhookPost, type WebhookTransport } from "./transport.ts";
export type { AlertEntry, AlertEvent, AttemptResult } from "./types.ts";
export { UnavailableBursts } from "./unavailable-bursts.ts";
export { WebhookQueue, type WebhookQueueOptions, type WebhookQueueStats } from "./webhook-queue.ts";
