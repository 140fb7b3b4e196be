import { X509Certificate } from "node:crypto";
import { readFileSync, unwatchFile, watchFile } from "node:fs";
import type { Server as HttpsServer } from "node:https";
import { createSecureContext } from "node:tls";
import type { TlsConfig } from "../config/index.ts";
import type { Logger } from "../telemetry/index.ts";
import { errorCause } from "../telemetry/logger.ts";

export interface TlsMaterial {
  cert: string;
  key: string;
}

export function readTlsMaterial(tls: TlsConfig): TlsMaterial {
  return { cert: readFileSync(tls.certPath, "utf8"), key: readFileSync(tls.keyPath, "utf8") };
}

/** What the log says about a certificate: never the key, just what an operator checks. */
export function describeCertificate(pem: string): Record<string, string> {
  try {
    const x = new X509Certificate(pem);
    return { subject: x.subject.replace(/\n/g, ", "), validTo: x.validTo, fingerprint256: x.fingerprint256 };
  } catch {
    return {};
  }
}

/**
 * Keeps an HTTPS server's certificate current: both files are polled (stat-based, so Kubernetes
 * Secret volumes that swap a symlink are seen too), and a changed pair is loaded into new
 * connections with setSecureContext. A pair that does not load (half-written, mismatched) is
 * ignored and logged; the old certificate keeps serving. Returns a function that stops watching.
 */
export function watchTlsMaterial(server: HttpsServer, tls: TlsConfig, logger: Logger): () => void {
  let current = readTlsMaterial(tls);
  const reload = () => {
    let next: TlsMaterial;
    try {
      next = readTlsMaterial(tls);
    } catch (err) {
      logger.log("warn", "tls reload failed", {
        code: (err as NodeJS.ErrnoException).code ?? "error",
        cause: errorCause(err),
      });
      return;
    }
    if (next.cert === current.cert && next.key === current.key) return;
    try {
      const context = { cert: next.cert, key: next.key };
      createSecureContext(context); // throws on a mismatched or partial pair
      server.setSecureContext(context);
    } catch (err) {
      logger.log("warn", "tls reload failed", {
        code: "INVALID_PAIR",
        cause: errorCause(err),
        note: "keeping the previous certificate",
      });
      return;
    }
    current = next;
    logger.log("info", "tls reloaded", describeCertificate(next.cert));
  };
  const interval = tls.reloadIntervalMs;
  watchFile(tls.certPath, { interval, persistent: false }, reload);
  watchFile(tls.keyPath, { interval, persistent: false }, reload);
  return () => {
    unwatchFile(tls.certPath, reload);
    unwatchFile(tls.keyPath, reload);
  };
}
