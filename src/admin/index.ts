export { type AdminAppDeps, createAdminApp } from "./admin-app.ts";
