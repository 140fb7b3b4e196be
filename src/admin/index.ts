export { type AdminAppDeps, createAdminApp } from "./admin-app.ts";
export {
  type AdminAuthenticator,
  type AdminAuthResult,
  type AdminPermission,
  type AdminPrincipal,
  type AdminRole,
  authorizeAdmin,
  createAdminAuthenticator,
  parseAdminRoles,
} from "./admin-auth.ts";
