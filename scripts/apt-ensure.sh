#!/bin/sh
# Usage: apt-ensure.sh COMMAND:PACKAGE...
# Makes sure each COMMAND is on PATH, apt-get installing its Debian PACKAGE when it is missing (Debian 12,
# as root). Idempotent: does nothing when every command is already there. Services that the packages would
# start are kept from starting with a temporary /usr/sbin/policy-rc.d (only if none exists; removed afterwards).
set -eu

log() { printf 'apt-ensure: %s\n' "$*"; }

if [ "$#" -eq 0 ]; then
  log "usage: apt-ensure.sh COMMAND:PACKAGE..." >&2
  exit 2
fi
PACKAGES=""
missing=""
for pair in "$@"; do
  cmd=${pair%%:*}
  pkg=${pair#*:}
  if command -v "$cmd" >/dev/null 2>&1; then
    log "found $cmd ($(command -v "$cmd"))"
  else
    missing="$missing $cmd"
    case " $PACKAGES " in *" $pkg "*) ;; *) PACKAGES="$PACKAGES $pkg" ;; esac
  fi
done

if [ -z "$missing" ]; then
  log "all present, nothing to do"
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

POLICY=/usr/sbin/policy-rc.d
created_policy=0
cleanup() {
  if [ "$created_policy" -eq 1 ]; then
    log "removing temporary $POLICY"
    rm -f "$POLICY"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -e "$POLICY" ]; then
  log "$POLICY already exists, leaving it alone"
else
  log "writing temporary $POLICY (exit 101: do not start services during the install)"
  printf '#!/bin/sh\n# temporary, written by pullgate scripts/apt-ensure.sh\nexit 101\n' >"$POLICY"
  chmod 755 "$POLICY"
  created_policy=1
fi

# Quiet: apt's output goes to a log that is shown only when a step fails. Only the missing packages
# are named; --no-upgrade leaves installed packages as they are (dependencies are installed as needed).
APT_LOG=$(mktemp)
trap 'cleanup; rm -f "$APT_LOG"' EXIT
log "apt-get update (quiet)"
if ! apt-get -qq update >"$APT_LOG" 2>&1; then
  cat "$APT_LOG" >&2
  log "error: apt-get update failed" >&2
  exit 1
fi

for pkg in $PACKAGES; do log "installing $pkg"; done
# shellcheck disable=SC2086 # word splitting of the package list is intended
if ! DEBIAN_FRONTEND=noninteractive apt-get -qq install -y --no-install-recommends --no-upgrade $PACKAGES >"$APT_LOG" 2>&1; then
  cat "$APT_LOG" >&2
  log "error: apt-get install failed" >&2
  exit 1
fi

status=0
for pair in "$@"; do
  cmd=${pair%%:*}
  if command -v "$cmd" >/dev/null 2>&1; then
    log "ok: $cmd"
  else
    log "error: $cmd still missing after the install" >&2
    status=1
  fi
done
exit "$status"
