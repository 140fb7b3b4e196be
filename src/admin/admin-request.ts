import type { Context } from "hono";
import { OciError, parseName } from "../oci/index.ts";
import { type AdminPermission, type AdminPrincipal, type AdminRole, authorizeAdmin } from "./admin-auth.ts";

export type AdminEnv = { Variables: { principal: AdminPrincipal } };

const MAX_BODY_BYTES = 256 * 1024;

/** The role that allows `permission` to the caller; 403 DENIED when none does. */
export function authorize(c: Context<AdminEnv>, permission: AdminPermission): AdminRole {
  const role = authorizeAdmin(c.get("principal"), permission);
  if (role) return role;
  const needed =
    permission.action === "read"
      ? "read (or write)"
      : permission.action === "write-project"
        ? `write:${permission.project} (or write)`
        : "write";
  throw new OciError("DENIED", `this admin request needs the role ${needed}`, {
    detail: { required: needed.split(" ")[0] },
  });
}

export function projectParam(c: Context<AdminEnv>): string {
  const project = c.req.param("project") ?? "";
  if (project.includes("/")) throw new OciError("NAME_INVALID", "invalid project name");
  return parseName(project);
}

export async function readJson(c: Context<AdminEnv>): Promise<unknown> {
  const declared = Number(c.req.header("content-length") ?? "0");
  if (declared > MAX_BODY_BYTES) throw badRequest("body too large");
  // Read at most the cap, also when the client sent no Content-Length (chunked).
  const chunks: Uint8Array[] = [];
  let total = 0;
  const body = c.req.raw.body;
  if (body) {
    const reader = body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > MAX_BODY_BYTES) {
        await reader.cancel().catch(() => {});
        throw badRequest("body too large");
      }
      chunks.push(value);
    }
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw badRequest("body is not JSON");
  }
}

export function badRequest(message: string): OciError {
  return new OciError("UNSUPPORTED", message, { status: 400 });
}
