import { createLocalJWKSet, createRemoteJWKSet, type JWTVerifyGetKey, jwtVerify } from "jose";
import type { ClientJwtConfig } from "../config/index.ts";

/** Asymmetric algorithms only: a JWKS holds public keys, and HS* would make one a shared secret. */
export const CLIENT_JWT_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519",
] as const;

/** Clock skew tolerated between the token issuer and pullgate (exp, nbf, iat). */
const CLOCK_TOLERANCE_SECONDS = 30;
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const MAX_TOKEN_LENGTH = 16 * 1024;

export type JwtOutcome = { ok: true; principal: string } | { ok: false; reason: "invalid" | "unavailable" };

export interface ClientJwtVerifier {
  verify(token: string): Promise<JwtOutcome>;
}

/** Is this string shaped like a compact JWS (three base64url parts)? */
export function looksLikeJwt(value: string): boolean {
  return value.length <= MAX_TOKEN_LENGTH && JWT_SHAPE.test(value);
}

/**
 * Verifies client JWTs (e.g. Kubernetes service-account tokens) with jose against a JWKS: signature
 * by an asymmetric key, issuer, audience, an `exp`, an `iat`, and a lifetime (exp − iat) no longer than
 * configured, so a long-lived token cannot be used even before it expires. The principal is the
 * configured subject claim. "Could not fetch the JWKS" is `unavailable`, not `invalid`.
 */
export function createClientJwtVerifier(config: ClientJwtConfig): ClientJwtVerifier {
  const keys: JWTVerifyGetKey = config.jwksUrl
    ? createRemoteJWKSet(new URL(config.jwksUrl), { timeoutDuration: config.jwksTimeoutMs })
    : createLocalJWKSet(config.jwks as Parameters<typeof createLocalJWKSet>[0]);
  return {
    async verify(token) {
      if (!looksLikeJwt(token)) return { ok: false, reason: "invalid" };
      let payload: Record<string, unknown>;
      try {
        ({ payload } = await jwtVerify(token, keys, {
          issuer: config.issuer,
          audience: config.audience,
          algorithms: [...CLIENT_JWT_ALGORITHMS],
          requiredClaims: ["exp", "iat", config.subjectClaim],
          clockTolerance: CLOCK_TOLERANCE_SECONDS,
          // Also refuses an iat in the future: exp − iat alone would let iat = exp − 1 h a decade ahead pass.
          maxTokenAge: config.maxLifetimeSeconds,
        }));
      } catch (err) {
        return { ok: false, reason: config.jwksUrl && couldNotLook(err) ? "unavailable" : "invalid" };
      }
      const { exp, iat } = payload;
      if (typeof exp !== "number" || typeof iat !== "number") return { ok: false, reason: "invalid" };
      if (exp - iat > config.maxLifetimeSeconds) return { ok: false, reason: "invalid" };
      const subject = payload[config.subjectClaim];
      if (typeof subject !== "string" || subject === "" || subject.length > 256)
        return { ok: false, reason: "invalid" };
      return { ok: true, principal: subject };
    },
  };
}

/** The JWKS could not be fetched (timeout, network, non-200, not a key set): not the token's fault. */
function couldNotLook(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== "string" || !code.startsWith("ERR_J")) return true;
  return code === "ERR_JWKS_TIMEOUT" || code === "ERR_JWKS_INVALID" || code === "ERR_JOSE_GENERIC";
}
