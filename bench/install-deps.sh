#!/bin/sh
# Installs what `npm run bench` drives (Debian 12, run as root):
#   - the integration-test programs (docker-registry, skopeo, ...) via scripts/install-test-deps.sh;
#   - the load generators: wrk (GET) and ab from apache2-utils (HEAD; wrk 4.1 hangs on HEAD).
# Idempotent: apt-get runs only when something is missing.
set -eu

log() { printf 'bench/install-deps: %s\n' "$*"; }

here=$(cd "$(dirname "$0")" && pwd)
sh "$here/../scripts/install-test-deps.sh"

PACKAGES="wrk apache2-utils"
missing=""
for cmd in wrk ab; do
  if command -v "$cmd" >/dev/null 2>&1; then
    log "found $cmd ($(command -v "$cmd"))"
  else
    missing="$missing $cmd"
  fi
done

if [ -z "$missing" ]; then
  log "all bench dependencies present, nothing to do"
  exit 0
fi
log "missing:$missing"

if [ "$(id -u)" -ne 0 ]; then
  log "error: must run as root to apt-get install $PACKAGES" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  log "error: apt-get not found (expected Debian 12); install $PACKAGES by hand" >&2
  exit 1
fi

log "apt-get update"
apt-get update
log "apt-get install -y --no-install-recommends $PACKAGES"
# shellcheck disable=SC2086 # word splitting of the package list is intended
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $PACKAGES

status=0
for cmd in wrk ab; do
  if command -v "$cmd" >/dev/null 2>&1; then
    log "ok: $cmd"
  else
    log "error: $cmd still missing after the install" >&2
    status=1
  fi
done
exit "$status"
