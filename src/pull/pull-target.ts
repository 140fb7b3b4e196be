/**
 * Where a request goes, as pull/ resolved it from what the client sent (its name and `?ns=`, or an
 * explicit upstream). Only targets made by PullService.resolve* are accepted back: callers cannot
 * name an upstream client themselves.
 */
export interface PullTarget {
  /** The repository name on the upstream (path prefix stripped, docker.io "library/" added). */
  readonly repository: string;
  /** The upstream's configured name. */
  readonly upstream: string;
  /** The name as the client wrote it, and its `?ns=`, for links back to pullgate. */
  readonly clientName: string;
  readonly ns: string | undefined;
}
