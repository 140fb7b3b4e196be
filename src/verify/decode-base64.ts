const BASE64_STD_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Standard, padded base64 (RFC 4648 §4) → bytes; undefined for anything else. CR and LF are dropped
 * first, as Go's `base64.StdEncoding` does (cosign's annotations may be wrapped); any other stray
 * character is an error (Node's own decoder silently skips them).
 */
export function decodeBase64(text: string): Uint8Array | undefined {
  const compact = text.replace(/[\r\n]/g, "");
  if (!BASE64_STD_RE.test(compact)) return undefined;
  return new Uint8Array(Buffer.from(compact, "base64"));
}
