import { open } from "node:fs/promises";

/** One kind of upstream request, with how many of it one pull made on average. */
export type RequestKind = { request: string; status: string; what: string; perPull: number };

export type RoundTrips = {
  /** Pulls counted (each a GET of a different image, by digest, with empty caches). */
  pulls: number;
  /** Upstream requests per pull through pullgate-enforce, by kind. */
  enforce: RequestKind[];
  enforceTotal: number;
  /** Registry requests per pull without pullgate (the same GETs against the registry itself). */
  directTotal: number;
};

/** Bytes appended to `file` since `offset`. */
export async function readSince(file: string, offset: number): Promise<string> {
  const fh = await open(file, "r");
  try {
    const { size } = await fh.stat();
    const buf = Buffer.alloc(Math.max(0, size - offset));
    await fh.read(buf, 0, buf.length, offset);
    return buf.toString("utf8");
  } finally {
    await fh.close();
  }
}

const ACCESS_LINE = /"(GET|HEAD|PUT|POST|PATCH|DELETE) (\S+) HTTP\/[\d.]+" (\d{3}) /;

/** Requests (method, URI, status) in distribution's access log (combined log format), in order. */
export function parseAccessLog(text: string): Array<{ method: string; uri: string; status: string }> {
  const out: Array<{ method: string; uri: string; status: string }> = [];
  for (const line of text.split("\n")) {
    const m = ACCESS_LINE.exec(line);
    if (m) out.push({ method: m[1] as string, uri: m[2] as string, status: m[3] as string });
  }
  return out;
}

/**
 * A request URI with its digests replaced by placeholders, so that the requests of different pulls group:
 * `/v2/proj/cold/manifests/sha256-<hex>.sig`, `/v2/proj/cold/blobs/<blob digest>`, ...
 */
export function requestKind(method: string, uri: string): string {
  const [path = "", query] = uri.split("?", 2);
  const generic = path
    .replace(/\/manifests\/c\d+$/, "/manifests/<tag>")
    .replace(/\/blobs\/sha256:[0-9a-f]{64}$/, "/blobs/<blob digest>")
    .replace(/sha256:[0-9a-f]{64}/g, "<digest>")
    .replace(/sha256-[0-9a-f]{64}/g, "sha256-<hex>");
  return `${method} ${generic}${query === undefined ? "" : `?${decodeURIComponent(query)}`}`;
}

/** What a signature lookup reads, by request kind (see src/pull/signature-lookup.ts), in lookup order. */
const KINDS: Array<{ pattern: RegExp; what: string }> = [
  {
    pattern: /\/manifests\/<tag>$/,
    what: "the client's HEAD by tag, passed on (resolves the tag to a digest)",
  },
  {
    pattern: /\/manifests\/<digest>$/,
    what: "the image manifest by digest (verified, and served to the client)",
  },
  { pattern: /\/manifests\/sha256-<hex>\.sig$/, what: "cosign legacy signature manifest (`.sig` tag)" },
  { pattern: /\/blobs\/<blob digest>$/, what: "simplesigning payload blob listed by the `.sig` manifest" },
  { pattern: /\/referrers\/<digest>(\?.*)?$/, what: "OCI 1.1 referrers API (distribution 2.8 has none)" },
  { pattern: /\/manifests\/sha256-<hex>$/, what: "referrers tag schema index (no Sigstore bundle attached)" },
];

function rank(request: string): { index: number; what: string } {
  const path = request.slice(request.indexOf(" ") + 1); // placeholders contain spaces
  const index = KINDS.findIndex((k) => k.pattern.test(path));
  return index < 0
    ? { index: KINDS.length, what: "other" }
    : { index, what: (KINDS[index] as { what: string }).what };
}

/** Says what each kind of request is, and puts them in lookup order. */
export function inLookupOrder(kinds: ReadonlyArray<Omit<RequestKind, "what">>): RequestKind[] {
  return kinds
    .map((k) => ({ ...k, ...rank(k.request) }))
    .sort((a, b) => a.index - b.index)
    .map((k) => ({ request: k.request, status: k.status, what: k.what, perPull: k.perPull }));
}

/** Groups access-log requests by kind and status, as averages over `pulls`, in lookup order. */
export function perPull(
  requests: Array<{ method: string; uri: string; status: string }>,
  pulls: number,
): RequestKind[] {
  const counts = new Map<string, { request: string; status: string; n: number }>();
  for (const r of requests) {
    const request = requestKind(r.method, r.uri);
    const key = `${request} ${r.status}`;
    const entry = counts.get(key) ?? { request, status: r.status, n: 0 };
    entry.n++;
    counts.set(key, entry);
  }
  return inLookupOrder([...counts.values()].map((e) => ({ ...e, perPull: e.n / pulls })));
}
