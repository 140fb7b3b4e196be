import { createHash, timingSafeEqual } from "node:crypto";
import { createLocalJWKSet, createRemoteJWKSet, type JWTVerifyGetKey, jwtVerify } from "jose";
import type { AdminJwtConfig, Secret } from "../config/index.ts";

export type AdminAuthResult = { ok: true; actor: string } | { ok: false; status: 401 | 403; message: string };

export interface AdminAuthenticator {
  authenticate(authorization: string | undefined): Promise<AdminAuthResult>;
}

/**
 * Bearer authentication for the admin API: the configured token, compared in constant time, or
 * (when configured) a JWT verified against a JWKS with issuer and audience. The actor it returns
 * ("token" or "jwt:<subject>") goes into the audit log; the token itself never does.
 */
export function createAdminAuthenticator(opts: {
  token: Secret | undefined;
  jwt: AdminJwtConfig | undefined;
}): AdminAuthenticator {
  const tokenHash = opts.token ? sha256(opts.token.reveal()) : undefined;
  let keys: JWTVerifyGetKey | undefined;
  if (opts.jwt) {
    keys = opts.jwt.jwksUrl
      ? createRemoteJWKSet(new URL(opts.jwt.jwksUrl))
      : createLocalJWKSet(opts.jwt.jwks as Parameters<typeof createLocalJWKSet>[0]);
  }
  return {
    async authenticate(authorization) {
      if (!tokenHash && !keys) {
        return {
          ok: false,
          status: 401,
          message: "the admin API is disabled: configure admin.token (or PULLGATE_ADMIN_TOKEN)",
        };
      }
      const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "");
      if (!m) return { ok: false, status: 401, message: "send Authorization: Bearer <admin token>" };
      const presented = m[1] as string;
      // Hash both sides so the comparison is constant-time whatever the lengths.
      if (tokenHash && timingSafeEqual(sha256(presented), tokenHash)) return { ok: true, actor: "token" };
      if (keys && opts.jwt && presented.split(".").length === 3) {
        try {
          const { payload } = await jwtVerify(presented, keys, {
            issuer: opts.jwt.issuer,
            audience: opts.jwt.audience,
            // A token without an expiry would be valid forever; one without a subject cannot be audited.
            requiredClaims: ["exp", "sub"],
          });
          return {
            ok: true,
            actor: `jwt:${typeof payload.sub === "string" ? payload.sub.slice(0, 200) : "unknown"}`,
          };
        } catch {
          return { ok: false, status: 401, message: "invalid admin credentials" };
        }
      }
      return { ok: false, status: 401, message: "invalid admin credentials" };
    },
  };
}

function sha256(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}
