// Why a signature did not count, in words an operator can act on: @sigstore/verify's error codes
// (and any other throw) turned into the detail of a deny.

/** The code of a @sigstore/verify VerificationError (or of any error that has a string code). */
export function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === "string" ? code : undefined;
}

/** An error's message, at most `max` characters (an ellipsis marks a cut). */
export function messageOf(err: unknown, max = 160): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.length > max ? `${message.slice(0, max)}…` : message;
}

/** A key signature's failure; `required`: the key's transparencyLog rule. */
export function keyFailure(code: string | undefined, message: string, required: boolean): string {
  if (code === "TIMESTAMP_ERROR" && required)
    return "no transparency-log entry, and the key requires one (transparencyLog: required; set optional for signatures made without Rekor)";
  if (code === "SIGNATURE_ERROR" || code === "PUBLIC_KEY_ERROR")
    return "the signature does not verify with this key";
  return describeFailure(code, message);
}

/** A keyless signature's failure (its certificate, its log entry, its timestamps). */
export function certificateFailure(code: string | undefined, message: string): string {
  if (code === "CERTIFICATE_ERROR")
    return `the certificate does not chain to the root's Fulcio CAs, or was not valid at the logged time (${message})`;
  if (code === "TIMESTAMP_ERROR") return `no verified log entry or timestamp (${message})`;
  return describeFailure(code, message);
}

function describeFailure(code: string | undefined, message: string): string {
  switch (code) {
    case "TLOG_INCLUSION_PROMISE_ERROR":
      return `the log entry's signed promise (SET) does not verify with any log of the trusted root (${message})`;
    case "TLOG_INCLUSION_PROOF_ERROR":
    case "TLOG_ERROR":
    case "TLOG_MISSING_INCLUSION_ERROR":
      return `the log entry does not verify against the trusted root (${message})`;
    case "TLOG_BODY_ERROR":
      return `the log entry is for another signature or payload (${message})`;
    case "TIMESTAMP_ERROR":
      return `a timestamp does not verify (${message})`;
    case "SIGNATURE_ERROR":
      return "the signature does not verify";
    default:
      return message;
  }
}
