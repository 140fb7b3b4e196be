#!/bin/sh
# Installs what `npm run bench` drives (Debian 12, run as root), when missing: the integration-test
# programs (docker-registry, skopeo, ...) and the load generators wrk (GET) and ab (HEAD; wrk 4.1 hangs on HEAD).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
sh "$here/../scripts/install-test-deps.sh"
exec sh "$here/../scripts/apt-ensure.sh" wrk:wrk ab:apache2-utils
