import { createHash } from "node:crypto";
import { pipeline, type Readable, Transform } from "node:stream";
import { type Digest, digestAlgorithm } from "../oci/index.ts";

export class BlobDigestMismatch extends Error {
  readonly code = "BLOB_DIGEST_MISMATCH";
  constructor(digest: string) {
    super(`upstream blob does not match ${digest}`);
  }
}

/**
 * `body` passed through unchanged while hashed; if the bytes do not hash to `digest`, the stream
 * fails before its last chunk is released, so the client sees a broken transfer, never a complete
 * blob with the wrong content. Destroying the result (client gone) destroys `body` too.
 */
export function verifyingDigest(body: Readable, digest: Digest): Readable {
  const hash = createHash(digestAlgorithm(digest));
  const expected = digest.slice(digest.indexOf(":") + 1);
  let held: Buffer | undefined;
  const check = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      // Hold back the latest chunk until the next arrives (or the end is checked).
      const previous = held;
      held = chunk;
      done(null, previous);
    },
    flush(done) {
      if (hash.digest("hex") !== expected) return done(new BlobDigestMismatch(digest));
      done(null, held);
    },
  });
  pipeline(body, check, () => {});
  return check;
}
