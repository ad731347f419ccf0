#!/usr/bin/env bash
# Installs what the chart tests need, when missing, at the versions in ./versions: helm and
# kubeconform from their Go modules into $(go env GOPATH)/bin, and, for kubeconform, the
# Kubernetes JSON schemas of each named Kubernetes version under
# ${FAIRLANE_CHART_TOOLS:-$HOME/.cache/fairlane-chart-tools}/k8s-schemas (from the
# kubernetes-validate package, in a virtual environment beside them). Safe to run again.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions
source "$here/versions"
gobin="$(go env GOPATH)/bin"
tools="${FAIRLANE_CHART_TOOLS:-$HOME/.cache/fairlane-chart-tools}"

# go version -m names the module version a binary was built from.
built_at() { [ -x "$1" ] && go version -m "$1" | grep -Eq "^[[:space:]]+mod[[:space:]]+$2[[:space:]]+$3([[:space:]]|$)"; }

built_at "$gobin/helm" helm.sh/helm/v4 "$HELM_VERSION" ||
  go install "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
built_at "$gobin/kubeconform" github.com/yannh/kubeconform "$KUBECONFORM_VERSION" ||
  go install "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"

venv="$tools/venv-kubernetes-validate-$KUBERNETES_VALIDATE_VERSION"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi
for version in $KUBERNETES_VERSIONS; do
  [ -f "$tools/k8s-schemas/v$version-local-strict/deployment-apps-v1.json" ] ||
    "$venv/bin/python" "$here/kubeconform-schemas.py" "$version" "$tools/k8s-schemas"
done
