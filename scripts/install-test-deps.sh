#!/bin/sh
# Installs the external programs the integration tests drive (Debian 12, run as root), when missing:
# docker-registry (CNCF distribution 2.8), redis-server, skopeo, containerd + ctr, htpasswd (apache2-utils),
# openssl (test certificate authorities), podman (client tests), kubectl (renders deploy/kubernetes),
# chromium (drives the admin console in test/console.test.ts through playwright-core).
set -eu
exec sh "$(dirname "$0")/apt-ensure.sh" \
  docker-registry:docker-registry redis-server:redis-server skopeo:skopeo \
  containerd:containerd ctr:containerd htpasswd:apache2-utils openssl:openssl podman:podman kubectl:kubernetes-client chromium:chromium
