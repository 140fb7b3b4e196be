import { OciError } from "./errors.ts";

/**
 * Grammar from distribution-spec v1.1 ("Pulling manifests"): a repository name is one or more
 * path components separated by "/", each `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`; a tag is
 * `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`; a digest is `algorithm ":" encoded`. We only accept the
 * algorithms we can check (sha256, sha512), with their exact lowercase-hex lengths.
 */
const NAME_COMPONENT = "[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*";
/** One path component of a repository name (distribution's grammar): also a project name. */
export const NAME_COMPONENT_RE = new RegExp(`^${NAME_COMPONENT}$`);
/** A repository name: components joined by "/" (length checked separately, MAX_NAME_LENGTH). */
export const NAME_RE = new RegExp(`^${NAME_COMPONENT}(?:/${NAME_COMPONENT})*$`);
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
/** A digest pullgate accepts: sha256 or sha512, lowercase hex. */
export const DIGEST_RE = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
/** The spec's general digest grammar: anything shaped like a digest but not sha256/sha512 is "unsupported". */
const DIGEST_SHAPE_RE = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** Many clients limit registry host + name to 255 characters; so do we, for the name alone. */
export const MAX_NAME_LENGTH = 255;

export type DigestAlgorithm = "sha256" | "sha512";
export type Digest = `${DigestAlgorithm}:${string}`;

export type Reference = { kind: "tag"; tag: string } | { kind: "digest"; digest: Digest };

export function isValidName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_NAME_LENGTH && NAME_RE.test(name);
}

export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

export function isDigest(value: string): value is Digest {
  return DIGEST_RE.test(value);
}

export function parseName(name: string): string {
  if (!isValidName(name)) {
    throw new OciError("NAME_INVALID", "invalid repository name", { detail: { name: truncate(name) } });
  }
  return name;
}

export function parseDigest(value: string): Digest {
  if (isDigest(value)) return value;
  const message = DIGEST_SHAPE_RE.test(value) ? "unsupported digest algorithm" : "invalid digest";
  throw new OciError("DIGEST_INVALID", message, { detail: { digest: truncate(value) } });
}

export function parseTag(value: string): string {
  if (!isValidTag(value))
    throw new OciError("TAG_INVALID", "invalid tag", { detail: { tag: truncate(value) } });
  return value;
}

/** A manifest reference is a digest when it contains ":" (tags cannot), else a tag. */
export function parseReference(value: string): Reference {
  if (value.includes(":")) return { kind: "digest", digest: parseDigest(value) };
  return { kind: "tag", tag: parseTag(value) };
}

export function referenceToString(ref: Reference): string {
  return ref.kind === "tag" ? ref.tag : ref.digest;
}

export function digestAlgorithm(digest: Digest): DigestAlgorithm {
  return digest.startsWith("sha512:") ? "sha512" : "sha256";
}

/** Bounded echo of untrusted input into error details. */
function truncate(value: string): string {
  return value.length > 300 ? `${value.slice(0, 300)}…` : value;
}

export interface ImageReference {
  /** Registry host when the reference names one ("docker.io", "ghcr.io", "127.0.0.1:5000"). */
  registry: string | undefined;
  name: string;
  reference: Reference;
}

/**
 * A user-written image reference: `[registry/]name[:tag][@digest]`, as in `docker pull`. The first
 * segment is a registry when it has a "." or ":" or is "localhost". No tag and no digest means
 * "latest". With both, the digest wins.
 */
export function parseImageReference(value: string): ImageReference {
  let rest = value.trim();
  let digest: Digest | undefined;
  const at = rest.indexOf("@");
  if (at !== -1) {
    digest = parseDigest(rest.slice(at + 1));
    rest = rest.slice(0, at);
  }
  let registry: string | undefined;
  const slash = rest.indexOf("/");
  if (slash !== -1) {
    const first = rest.slice(0, slash);
    if (first.includes(".") || first.includes(":") || first === "localhost") {
      registry = first.toLowerCase();
      rest = rest.slice(slash + 1);
    }
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon !== -1) {
    tag = parseTag(rest.slice(colon + 1));
    rest = rest.slice(0, colon);
  }
  const name = parseName(rest);
  const reference: Reference = digest ? { kind: "digest", digest } : { kind: "tag", tag: tag ?? "latest" };
  return { registry, name, reference };
}
