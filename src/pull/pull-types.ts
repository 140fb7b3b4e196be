import type { Digest, Reference } from "../oci/index.ts";
import type { RequestContext, Route } from "../upstream/index.ts";

export interface ServedManifest {
  contentType: string;
  digest: Digest;
  length: number;
  /** The exact bytes hashed to `digest`; undefined for HEAD. */
  bytes: Buffer | undefined;
}

/** A manifest request inside pull/ (routed). */
export interface ManifestRequest extends RequestContext {
  route: Route;
  reference: Reference;
  method: "GET" | "HEAD";
  accept: string | undefined;
}
