import { defineConfig } from "vitest/config";

// Used only by `npm run test:mutation` (Stryker). Runs the unit tests of the pure,
// security-critical modules; integration tests under test/ start real servers and must not run.
export default defineConfig({
  test: {
    include: ["src/verify/**/*.test.ts", "src/oci/**/*.test.ts", "src/policy/repository-glob.test.ts"],
    testTimeout: 60_000,
  },
});
