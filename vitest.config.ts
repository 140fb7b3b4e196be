import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration tests start real servers (registry, containerd); 2 cores are shared.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
