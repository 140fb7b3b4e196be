import type { Readable } from "node:stream";
import type { OciErrorEntry } from "../oci/index.ts";

export class BodyTooLargeError extends Error {
  readonly code = "BODY_TOO_LARGE";
  constructor() {
    super("body exceeds the size cap");
  }
}

const ignore = () => {};

/**
 * Stops reading an upstream body and releases its connection. An undici body destroyed before its
 * end emits an AbortError; without a listener that would be an uncaught exception.
 */
export function discardBody(body: Readable): void {
  body.on("error", ignore);
  body.destroy();
}

/** Reads a whole body, refusing (and destroying the stream) as soon as it passes `maxBytes`. */
export async function readBounded(body: Readable, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of body) {
      const buf = chunk as Buffer;
      total += buf.length;
      if (total > maxBytes) throw new BodyTooLargeError();
      chunks.push(buf);
    }
  } catch (err) {
    discardBody(body);
    throw err;
  }
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, total);
}

const MAX_ERROR_BODY = 64 * 1024;

/** Best-effort read of an upstream's OCI error body; never throws, caps sizes. */
export async function readErrorEntries(body: Readable): Promise<OciErrorEntry[] | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readBounded(body, MAX_ERROR_BODY);
  } catch {
    return undefined;
  }
  try {
    const parsed = JSON.parse(bytes.toString("utf8")) as { errors?: unknown };
    if (!Array.isArray(parsed.errors)) return undefined;
    const entries: OciErrorEntry[] = [];
    for (const e of parsed.errors.slice(0, 10)) {
      if (!e || typeof e !== "object" || typeof (e as { code?: unknown }).code !== "string") continue;
      const { code, message, detail } = e as { code: string; message?: unknown; detail?: unknown };
      const entry: OciErrorEntry = {
        code: code.slice(0, 64),
        message: typeof message === "string" ? message.slice(0, 1000) : "",
      };
      if (detail !== undefined) entry.detail = detail;
      entries.push(entry);
    }
    return entries.length > 0 ? entries : undefined;
  } catch {
    return undefined;
  }
}
