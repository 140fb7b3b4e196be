import { isRecord } from "./json-field.ts";
import { quote } from "./quote.ts";

/** The repository an image is pulled from: the upstream's registry host and the repository name on it. */
export interface PulledRepository {
  registry: string;
  name: string;
}

const DOCKER_HUB_ALIASES = new Set([
  "docker.io",
  "index.docker.io",
  "registry-1.docker.io",
  "registry.hub.docker.com",
]);

/**
 * A signed image reference (`docker-reference` of a simple-signing payload, the `name` of an in-toto
 * subject) as (registry, repository), with tag and digest dropped, Docker Hub's names unified and its
 * one-segment names under `library/`, as containers/image's `matchRepository` compares them.
 */
export function toSignedRepository(reference: string): PulledRepository | undefined {
  let rest = reference.trim();
  const at = rest.indexOf("@");
  if (at !== -1) rest = rest.slice(0, at);
  const slash = rest.indexOf("/");
  let registry = "docker.io";
  if (slash !== -1) {
    const first = rest.slice(0, slash);
    if (first.includes(".") || first.includes(":") || first === "localhost") {
      registry = first.toLowerCase();
      rest = rest.slice(slash + 1);
    }
  }
  const colon = rest.lastIndexOf(":");
  if (colon !== -1 && !rest.slice(colon).includes("/")) rest = rest.slice(0, colon);
  if (rest === "" || !/^[a-z0-9._/-]+$/.test(rest)) return undefined;
  if (DOCKER_HUB_ALIASES.has(registry)) {
    registry = "docker.io";
    if (!rest.includes("/")) rest = `library/${rest}`;
  }
  return { registry, name: rest };
}

export function sameRepository(a: PulledRepository, b: PulledRepository): boolean {
  const hub = (r: string) => (DOCKER_HUB_ALIASES.has(r) ? "docker.io" : r);
  return hub(a.registry) === hub(b.registry) && a.name === b.name;
}

/** Why a simple-signing payload does not name `expected` (undefined: it does). */
export function payloadRepositoryProblem(payload: unknown, expected: PulledRepository): string | undefined {
  const critical = isRecord(payload) ? payload.critical : undefined;
  const identity = isRecord(critical) ? critical.identity : undefined;
  const reference = isRecord(identity) ? identity["docker-reference"] : undefined;
  if (typeof reference !== "string") return "payload names no docker-reference";
  const signed = toSignedRepository(reference);
  if (!signed || !sameRepository(signed, expected)) {
    return `payload is for ${quote(reference)}, not ${expected.registry}/${expected.name}`;
  }
  return undefined;
}

/** Why no in-toto subject names `expected` by its `name` (cosign v3 bundles name none). */
export function subjectRepositoryProblem(
  subjects: readonly unknown[],
  expected: PulledRepository,
): string | undefined {
  const names = subjects
    .map((s) => (isRecord(s) && typeof s.name === "string" ? s.name : undefined))
    .filter((n): n is string => n !== undefined && n !== "");
  if (names.length === 0) return "no statement subject names a repository";
  for (const n of names) {
    const signed = toSignedRepository(n);
    if (signed && sameRepository(signed, expected)) return undefined;
  }
  return `statement subjects name ${names.map((n) => quote(n)).join(", ")}, not ${expected.registry}/${expected.name}`;
}
