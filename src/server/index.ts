// The listeners: the proxy (HTTP or HTTPS with reloaded certificates) and the admin port, with drain on stop.
export { type RunningPullgate, startPullgate } from "./start-pullgate.ts";
