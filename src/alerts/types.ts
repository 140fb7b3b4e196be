import type { AlertEventName } from "../config/types.ts";

export type AlertEvent = AlertEventName;

/**
 * One alert: decisions of one kind aggregated by (event, project, upstream, repository, digest, reason).
 * `unavailable` alerts are per (project, upstream) and name no repository or digest.
 */
export interface AlertEntry {
  event: AlertEvent;
  project: string;
  upstream: string;
  repository?: string | undefined;
  digest?: string | undefined;
  reason: string;
  /**
   * Alerts of projects outside the configuration (project `_other`) are one per (event, upstream, reason):
   * any client can pull any repository name, and alerts per image there would crowd the queue. The first
   * image folded in, as `repository@digest`.
   */
  example?: string | undefined;
  /** The first decision's detail (what the reason is about), when it had one. */
  detail?: string | undefined;
  /** Decisions aggregated into this alert. */
  count: number;
  /** Epoch milliseconds of the first and the last of them. */
  firstSeen: number;
  lastSeen: number;
}

export function alertKey(e: AlertEntry): string {
  return [e.event, e.project, e.upstream, e.repository ?? "", e.digest ?? "", e.reason].join("\u0000");
}

/** The result of one delivery attempt. */
export type AttemptResult =
  | { ok: true; status: number }
  | {
      ok: false;
      /** 5xx, 408, 429 and network errors are retried; any other answer is not. */
      retryable: boolean;
      status?: number | undefined;
      /** Retry-After, in milliseconds from now, when the receiver sent one. */
      retryAfterMs?: number | undefined;
      /** An error code (never a message that could quote the URL). */
      error?: string | undefined;
    };
