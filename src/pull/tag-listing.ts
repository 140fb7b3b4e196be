import { OciError, parseTag } from "../oci/index.ts";
import type { PullTarget } from "./pull-target.ts";

/** Largest page a client may ask for in tags/list; distribution caps at 1000 by default too. */
export const MAX_TAGS_PAGE = 10_000;

export function parsePageSize(n: string): number {
  if (!/^\d{1,6}$/.test(n) || Number(n) > MAX_TAGS_PAGE) {
    throw new OciError("PAGINATION_NUMBER_INVALID", `n must be an integer from 0 to ${MAX_TAGS_PAGE}`);
  }
  return Number(n);
}

/**
 * The upstream's `Link: </v2/<upstream name>/tags/list?n=..&last=..>; rel="next"` rewritten to
 * pullgate's own path for the client's name (keeping ?ns=). Only n and last are carried over.
 */
export function rewriteTagsLink(link: string | undefined, target: PullTarget): string | undefined {
  if (!link) return undefined;
  const m = /<([^>]*)>\s*;\s*rel="?next"?/i.exec(link);
  if (!m) return undefined;
  let next: URL;
  try {
    next = new URL(m[1] as string, "http://upstream.invalid");
  } catch {
    return undefined;
  }
  const query = new URLSearchParams();
  const n = next.searchParams.get("n");
  const last = next.searchParams.get("last");
  if (n !== null && /^\d{1,6}$/.test(n) && Number(n) <= MAX_TAGS_PAGE) query.set("n", n);
  if (last !== null) {
    try {
      query.set("last", parseTag(last));
    } catch {
      return undefined;
    }
  }
  if (target.ns !== undefined) query.set("ns", target.ns);
  const qs = query.size > 0 ? `?${query}` : "";
  return `</v2/${target.clientName}/tags/list${qs}>; rel="next"`;
}
