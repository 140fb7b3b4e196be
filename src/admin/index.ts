export { type AdminAppDeps, createAdminApp } from "./admin-app.ts";
export { type AdminAuthenticator, type AdminAuthResult, createAdminAuthenticator } from "./admin-auth.ts";
