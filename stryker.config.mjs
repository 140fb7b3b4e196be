// Mutation testing for the pure, security-critical code. Run with `npm run test:mutation`.
// Not part of `npm test` / CI: it takes minutes. See docs/mutation-testing.md.
//
// No TypeScript checker: TypeScript 7 has no JavaScript compiler API, which
// @stryker-mutator/typescript-checker loads. Mutants that would not type-check therefore run
// (vitest strips types) and are reported as killed or survived like any other mutant.

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: "vitest",
  // Stryker rewrites `extends`/`references` of this tsconfig via the TypeScript JS API, which
  // TypeScript 7 lacks (crash: ts.parseConfigFileTextToJson is not a function). Our tsconfig.json has
  // neither, so point the option at a file that does not exist to skip the rewrite.
  tsconfigFile: "tsconfig.stryker-skip.json",
  vitest: {
    configFile: "vitest.mutation.config.ts",
    related: true,
  },
  coverageAnalysis: "perTest",
  mutate: [
    "src/verify/**/*.ts",
    "src/oci/**/*.ts",
    "src/policy/repository-glob.ts",
    "!**/*.test.ts",
    "!**/*.test-helpers.ts",
  ],
  // 2 shared cores.
  concurrency: 1,
  reporters: ["clear-text", "progress", "html", "json"],
  htmlReporter: { fileName: "reports/mutation/mutation.html" },
  jsonReporter: { fileName: "reports/mutation/mutation.json" },
  tempDirName: ".stryker-tmp",
  ignorePatterns: ["dist", "bench/results", "bench/.work", ".tmp", "reports"],
  thresholds: { high: 90, low: 80, break: null },
  timeoutMS: 10_000,
};
