import type { UpstreamConfig } from "../config/index.ts";
import { OciError } from "../oci/index.ts";
import type { RegistryClient } from "./registry-client.ts";

/** Docker Hub answers to several names; containerd sends ?ns=docker.io. */
const REGISTRY_ALIASES: Record<string, string> = {
  "index.docker.io": "docker.io",
  "registry-1.docker.io": "docker.io",
  "registry.hub.docker.com": "docker.io",
};
const NS_RE = /^[a-z0-9](?:[a-z0-9.-]{0,252})(?::\d{1,5})?$/;

export interface Route {
  client: RegistryClient;
  upstream: UpstreamConfig;
  /** The repository name on the upstream (prefix stripped, docker.io "library/" added). */
  name: string;
  /** The name as the client wrote it, and its ?ns=, for links back to pullgate. */
  clientName: string;
  ns: string | undefined;
}

/**
 * Picks the upstream for a request: (a) containerd's ?ns=<registry>, else (b) a configured path
 * prefix (/v2/<prefix>/<name>/…, longest prefix wins), else (c) the default upstream.
 */
export class UpstreamRouter {
  readonly clients: readonly RegistryClient[];
  readonly #byRegistry = new Map<string, RegistryClient>();
  readonly #prefixed: RegistryClient[];
  readonly #default: RegistryClient | undefined;

  constructor(clients: readonly RegistryClient[]) {
    this.clients = clients;
    for (const c of clients) this.#byRegistry.set(c.config.registry, c);
    this.#prefixed = clients
      .filter((c) => c.config.pathPrefix !== undefined)
      .sort((a, b) => (b.config.pathPrefix?.length ?? 0) - (a.config.pathPrefix?.length ?? 0));
    this.#default = clients.find((c) => c.config.default);
  }

  get defaultClient(): RegistryClient | undefined {
    return this.#default;
  }

  /** `name` must already be a valid repository name; `ns` is the raw query parameter, if any. */
  route(name: string, ns: string | undefined): Route {
    if (ns !== undefined) {
      const registry = normalizeRegistry(ns);
      const client = this.#byRegistry.get(registry);
      if (!client) {
        throw new OciError("NAME_UNKNOWN", `no upstream is configured for registry ${registry}`, {
          detail: { ns: registry },
        });
      }
      return this.#finish(client, name, name, ns);
    }
    for (const client of this.#prefixed) {
      const prefix = `${client.config.pathPrefix}/`;
      if (name.startsWith(prefix)) return this.#finish(client, name.slice(prefix.length), name, undefined);
    }
    if (!this.#default) {
      throw new OciError(
        "NAME_UNKNOWN",
        "no upstream matches this repository and there is no default upstream",
      );
    }
    return this.#finish(this.#default, name, name, undefined);
  }

  /** Routes `name` to the upstream called `upstreamName` (the admin dry run's explicit choice). */
  routeVia(upstreamName: string, name: string): Route {
    const client = this.clients.find((c) => c.config.name === upstreamName);
    if (!client) throw new OciError("NAME_UNKNOWN", `no upstream is called ${upstreamName}`);
    return this.#finish(client, name, name, undefined);
  }

  #finish(client: RegistryClient, name: string, clientName: string, ns: string | undefined): Route {
    const upstreamName =
      client.config.registry === "docker.io" && !name.includes("/") ? `library/${name}` : name;
    return { client, upstream: client.config, name: upstreamName, clientName, ns };
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.close()));
  }
}

function normalizeRegistry(ns: string): string {
  // ASCII only before folding case: "registry.\u212a8s.io" (Kelvin sign) must not become registry.k8s.io.
  const lower = /^[\x21-\x7e]*$/.test(ns) ? ns.toLowerCase() : "";
  if (!NS_RE.test(lower))
    throw new OciError("NAME_INVALID", "invalid ns parameter", { detail: { ns: ns.slice(0, 300) } });
  return REGISTRY_ALIASES[lower] ?? lower;
}
