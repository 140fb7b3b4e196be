/**
 * A project is the first path segment of the repository name after upstream routing
 * ("proj/app" → "proj"; docker.io "library/nginx" → "library"). The name was validated against the
 * lowercase grammar before routing, so case, encoding or extra slashes cannot reach another project.
 */
export function projectOf(repository: string): string {
  const slash = repository.indexOf("/");
  return slash === -1 ? repository : repository.slice(0, slash);
}
