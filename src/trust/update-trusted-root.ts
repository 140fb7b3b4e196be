import { createHash } from "node:crypto";
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { initTUF } from "@sigstore/tuf";
import { parseTrustRoot, type TrustRoot } from "../verify/index.ts";

/** The TUF target that holds a Sigstore trusted root (the public-good repository and `cosign trusted-root create` mirrors). */
export const TRUSTED_ROOT_TARGET = "trusted_root.json";

export interface TrustedRootUpdate {
  /** The root's name in the configuration. */
  name: string;
  /** The file pullgate reads it from (written atomically: replicas never see half a file). */
  file: string;
  /** TUF repository base URL (metadata at the root, targets under targets/). */
  mirrorUrl: string;
  /** The mirror's first trusted TUF root.json; not needed for a mirror @sigstore/tuf ships a seed for. */
  tufRootPath?: string | undefined;
  /** Where TUF metadata and targets are cached between runs (its root.json is the trust anchor once seeded). */
  cacheDir: string;
  timeoutMs: number;
}

export type TrustedRootUpdateResult =
  | { outcome: "updated"; previousSha256: string | undefined; root: TrustRoot }
  | { outcome: "current"; root: TrustRoot };

/** A failed update: nothing was written; `message` says why in words an operator can act on. */
export class TrustedRootUpdateError extends Error {
  readonly code = "TRUST_UPDATE_FAILED";
}

/**
 * Fetches the trusted root from a TUF repository (every metadata signature, version, expiry and the
 * target's length and hash checked by tuf-js), checks that it is a trusted root pullgate can use, and
 * replaces `file` with it by rename. Runs outside the pull path: verification never fetches anything.
 */
export async function updateTrustedRoot(update: TrustedRootUpdate): Promise<TrustedRootUpdateResult> {
  let text: string;
  try {
    const tuf = await initTUF({
      mirrorURL: update.mirrorUrl,
      rootPath: update.tufRootPath,
      cachePath: update.cacheDir,
      timeout: update.timeoutMs,
      retry: false,
    });
    text = await tuf.getTarget(TRUSTED_ROOT_TARGET);
  } catch (err) {
    throw new TrustedRootUpdateError(
      `cannot fetch ${TRUSTED_ROOT_TARGET} from ${update.mirrorUrl} over TUF: ${describe(err)}`,
    );
  }
  let root: TrustRoot;
  try {
    root = parseTrustRoot(update.name, text);
  } catch (err) {
    throw new TrustedRootUpdateError(
      `${update.mirrorUrl} serves a ${TRUSTED_ROOT_TARGET} pullgate cannot use: ${describe(err)}`,
    );
  }
  const previousSha256 = sha256Of(update.file);
  if (previousSha256 === root.sha256) return { outcome: "current", root };
  const temporary = join(dirname(update.file), `.${basename(update.file)}.${process.pid}.tmp`);
  try {
    writeFileSync(temporary, text, { mode: 0o644, flush: true });
    renameSync(temporary, update.file);
  } catch (err) {
    rmSync(temporary, { force: true });
    throw new TrustedRootUpdateError(`cannot write ${update.file}: ${describe(err)}`);
  }
  return { outcome: "updated", previousSha256, root };
}

function sha256Of(file: string): string | undefined {
  try {
    return createHash("sha256").update(readFileSync(file)).digest("hex");
  } catch {
    return undefined;
  }
}

function describe(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  const message = (err instanceof Error ? err.message : String(err)).split("\n")[0] ?? "";
  const cause = (err as { cause?: { code?: unknown } }).cause?.code;
  const text = [
    typeof code === "string" ? code : undefined,
    message,
    typeof cause === "string" ? cause : undefined,
  ]
    .filter((part) => part !== undefined && part !== "")
    .join(": ");
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}
