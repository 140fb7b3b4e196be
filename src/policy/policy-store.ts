import type { Logger } from "../telemetry/index.ts";
import { errorCause } from "../telemetry/logger.ts";

/**
 * The runtime policy-override store: the admin API writes per-project overrides of the config file's policy.
 * With Redis every replica sharing it sees a change within a second (pub/sub) and overrides survive restarts;
 * without Redis they live in this process's memory.
 */
export interface PolicyStore {
  /** Every stored override: project name → the JSON object the admin API stored (opaque to the store). */
  load(): Promise<Record<string, unknown>>;
  /** Stores (replaces) a project's override and notifies every replica (including this one). */
  put(project: string, override: unknown): Promise<void>;
  /** Removes a project's override (back to the config file's policy) and notifies. */
  remove(project: string): Promise<void>;
  /**
   * Called with the project name on every change by any replica, or with "*" when everything must be reloaded
   * (e.g. after a reconnect, since pub/sub messages may have been missed). Returns an unsubscribe function.
   */
  subscribe(listener: (project: string) => void): () => void;
  close(): Promise<void>;
}

/** Sent to listeners when every override must be reloaded. */
export const RELOAD_ALL = "*";

/**
 * In-process store. Values are kept as JSON text, so callers get copies and a value that cannot be stored in
 * Redis fails here too. Listeners are called synchronously, before put/remove resolve.
 */
export function createMemoryPolicyStore(opts: { logger?: Logger } = {}): PolicyStore {
  const overrides = new Map<string, string>();
  const listeners = createListeners(opts.logger);
  return {
    async load() {
      return Object.fromEntries(
        [...overrides].map(([project, json]) => [project, JSON.parse(json) as unknown]),
      );
    },
    async put(project, override) {
      overrides.set(checkProject(project), toJson(override));
      listeners.emit(project);
    },
    async remove(project) {
      overrides.delete(checkProject(project));
      listeners.emit(project);
    },
    subscribe: listeners.add,
    async close() {
      listeners.clear();
    },
  };
}

/** A project name a store may hold (not empty, not the reload-all marker). */
export function checkProject(project: string): string {
  if (typeof project !== "string" || project.length === 0 || project === RELOAD_ALL) {
    throw new TypeError(`invalid project name: ${JSON.stringify(project)}`);
  }
  return project;
}

/** The JSON text a store keeps for an override; throws for a value JSON cannot hold. */
export function toJson(override: unknown): string {
  const json = JSON.stringify(override);
  if (json === undefined) throw new TypeError("a policy override must be JSON-serializable");
  return json;
}

/** Change listeners of a store: each subscription independent, a throwing listener logged and skipped. */
export function createListeners(logger: Logger | undefined) {
  const listeners = new Set<(project: string) => void>();
  return {
    add(listener: (project: string) => void): () => void {
      // A wrapper, so that subscribing the same function twice gives two independent subscriptions.
      const entry = (project: string): void => listener(project);
      listeners.add(entry);
      return () => {
        listeners.delete(entry);
      };
    },
    emit(project: string): void {
      for (const listener of [...listeners]) {
        try {
          listener(project);
        } catch (err) {
          // A listener bug must not break a write or the subscriber connection.
          logger?.log("error", "policy listener failed", { project, cause: errorCause(err) });
        }
      }
    },
    clear(): void {
      listeners.clear();
    },
  };
}
