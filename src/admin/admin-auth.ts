import { createHash, timingSafeEqual } from "node:crypto";
import { createLocalJWKSet, createRemoteJWKSet, type JWTVerifyGetKey, jwtVerify } from "jose";
import type { AdminJwtConfig, Secret } from "../config/index.ts";

/**
 * An admin role:
 *  - `read`: the GET endpoints and the dry run (POST /admin/v1/verify);
 *  - `write`: everything;
 *  - `write:<project>`: PUT and DELETE of that project's runtime policy, nothing else.
 */
export type AdminRole = "read" | "write" | `write:${string}`;

/** Who is calling the admin API, and what they may do. */
export interface AdminPrincipal {
  /** For the audit log: "token", or "jwt:<subject>". Never a credential. */
  actor: string;
  /** The recognised roles (never empty). The static admin token holds ["write"]. */
  roles: readonly AdminRole[];
}

export type AdminAuthResult =
  | ({ ok: true } & AdminPrincipal)
  | { ok: false; status: 401 | 403; message: string };

export interface AdminAuthenticator {
  authenticate(authorization: string | undefined): Promise<AdminAuthResult>;
}

/** What an admin request needs. */
export type AdminPermission =
  | { action: "read" }
  | { action: "write" }
  | { action: "write-project"; project: string };

/** JWT clock skew allowed on exp, nbf and iat (seconds). */
const CLOCK_TOLERANCE_SECONDS = 30;

/** A project name (the repository name grammar's path component), as in `write:<project>`. */
const PROJECT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;

/**
 * Bearer authentication for the admin API: the configured token, compared in constant time (full admin), or
 * (when configured) a JWT verified against a JWKS with issuer and audience, whose `exp − iat` is at most
 * `maxLifetimeSeconds` and whose `rolesClaim` grants at least one recognised role (else 403). The actor
 * ("token" or "jwt:<subject>") and the role used go into the audit log; the token itself never does.
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
  const invalid = { ok: false, status: 401, message: "invalid admin credentials" } as const;
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
      if (tokenHash && timingSafeEqual(sha256(presented), tokenHash)) {
        return { ok: true, actor: "token", roles: ["write"] };
      }
      const jwt = opts.jwt;
      if (!keys || !jwt || presented.split(".").length !== 3) return invalid;
      let payload: Record<string, unknown>;
      try {
        ({ payload } = await jwtVerify(presented, keys, {
          issuer: jwt.issuer,
          audience: jwt.audience,
          // A token without an expiry would be valid forever; one without a subject cannot be audited;
          // without iat its lifetime cannot be bounded.
          requiredClaims: ["exp", "iat", "sub"],
          // Also refuses an iat in the future (beyond the tolerance).
          maxTokenAge: jwt.maxLifetimeSeconds,
          clockTolerance: CLOCK_TOLERANCE_SECONDS,
        }));
      } catch {
        return invalid;
      }
      const { exp, iat } = payload as { exp: number; iat: number };
      if (exp - iat > jwt.maxLifetimeSeconds) {
        return {
          ok: false,
          status: 401,
          message: `admin JWTs may live at most ${jwt.maxLifetimeSeconds} s (exp - iat); ask for a shorter-lived token`,
        };
      }
      const actor = `jwt:${typeof payload.sub === "string" ? payload.sub.slice(0, 200) : "unknown"}`;
      const roles = parseAdminRoles(payload[jwt.rolesClaim]);
      if (roles.length === 0) {
        return {
          ok: false,
          status: 403,
          message: `the token grants no pullgate admin role: its "${jwt.rolesClaim}" claim must list read, write or write:<project>`,
        };
      }
      return { ok: true, actor, roles };
    },
  };
}

/**
 * The recognised roles of a roles claim: an array of strings, or one string of space-separated roles (OAuth
 * `scope` style). Anything else in it is ignored.
 */
export function parseAdminRoles(claim: unknown): AdminRole[] {
  const values =
    typeof claim === "string"
      ? claim.split(" ")
      : Array.isArray(claim)
        ? claim.filter((v): v is string => typeof v === "string")
        : [];
  const roles = new Set<AdminRole>();
  for (const value of values) {
    if (value === "read" || value === "write") roles.add(value);
    else if (value.startsWith("write:") && PROJECT.test(value.slice("write:".length))) {
      roles.add(value as `write:${string}`);
    }
  }
  return [...roles];
}

/** The role that grants `permission` to `principal` (recorded in the audit log), or undefined. */
export function authorizeAdmin(
  principal: AdminPrincipal,
  permission: AdminPermission,
): AdminRole | undefined {
  if (principal.roles.includes("write")) return "write";
  switch (permission.action) {
    case "read":
      return principal.roles.includes("read") ? "read" : undefined;
    case "write-project": {
      const role: AdminRole = `write:${permission.project}`;
      return principal.roles.includes(role) ? role : undefined;
    }
    case "write":
      return undefined;
  }
}

function sha256(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}
