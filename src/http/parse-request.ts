import {
  type Digest,
  OciError,
  parseDigest,
  parseName,
  parseReference,
  type Reference,
} from "../oci/index.ts";

export type RegistryPath =
  | { kind: "base" }
  | { kind: "manifest"; name: string; reference: Reference }
  | { kind: "blob"; name: string; digest: Digest }
  | { kind: "tags"; name: string }
  | { kind: "referrers"; name: string; digest: Digest };

export type RequestKind = RegistryPath["kind"];

/**
 * Parses the raw, undecoded request path. Nothing is percent-decoded or normalized, so "%2F",
 * "%2e%2e", "..", "//" or a backslash simply fail the name/tag/digest grammar: no path trick can
 * produce a name that differs from what the client wrote, and nothing invalid goes upstream.
 * The endpoint keyword is read from the right, because names may contain "manifests" etc.
 */
export function parseRegistryPath(path: string): RegistryPath {
  if (path === "/v2" || path === "/v2/") return { kind: "base" };
  if (!path.startsWith("/v2/")) throw notFound();
  const segments = path.slice(4).split("/");
  if (segments.length < 3) throw notFound();
  const last = segments[segments.length - 1] as string;
  const keyword = segments[segments.length - 2] as string;
  const rawName = segments.slice(0, -2).join("/");
  switch (keyword) {
    case "manifests":
      return { kind: "manifest", name: parseName(rawName), reference: parseReference(last) };
    case "blobs":
      return { kind: "blob", name: parseName(rawName), digest: parseDigest(last) };
    case "referrers":
      return { kind: "referrers", name: parseName(rawName), digest: parseDigest(last) };
    case "tags":
      if (last === "list") return { kind: "tags", name: parseName(rawName) };
      throw notFound();
    default:
      throw notFound();
  }
}

function notFound(): OciError {
  return new OciError(
    "UNSUPPORTED",
    "unknown endpoint: pullgate serves the OCI distribution read API under /v2/",
    {
      status: 404,
    },
  );
}

/** The request target exactly as received: path and query split, neither decoded. */
export function splitTarget(target: string): { path: string; query: string } {
  const q = target.indexOf("?");
  return q === -1 ? { path: target, query: "" } : { path: target.slice(0, q), query: target.slice(q + 1) };
}
