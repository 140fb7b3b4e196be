// Public surface of demo/: the `pullgate demo` command.
export { DEMO_USAGE, runDemo } from "./run-demo.ts";
