#!/bin/sh
# Installs what `npm run bench` drives, when missing (Debian 12, as root): the integration-test programs
# (docker-registry, redis-server, skopeo, ...), wrk (the blob GETs), nginx (a comparison target) and, from npm,
# autocannon (the manifest scenarios' load generator: a devDependency; installed without saving when absent).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
sh "$here/../scripts/install-test-deps.sh"
sh "$here/../scripts/apt-ensure.sh" wrk:wrk nginx:nginx
cd "$here/.."
if node -e 'require.resolve("autocannon")' >/dev/null 2>&1; then
  echo "bench: found autocannon $(node -p 'require("autocannon/package.json").version')"
else
  spec=$(node -p 'require("./package.json").devDependencies?.autocannon ?? "9.0.0"')
  echo "bench: installing autocannon@$spec (npm install --no-save)"
  npm install --no-save --no-audit --no-fund "autocannon@$spec"
fi
