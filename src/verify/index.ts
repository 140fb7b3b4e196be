// Public surface of verify/ (filled in by the implementation: parseTrustedKey, judgeSignatures, ...).
export * from "./types.ts";
