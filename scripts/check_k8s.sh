#!/usr/bin/env bash
# Checks everything under k8s/ and the image install, with pinned tools it installs itself:
#   1. helm lint + render the chart; k8s/rendered/ must equal the render (--update rewrites it)
#   2. every rendered object (default values and a variant) against the Kubernetes schemas
#   3. promtool: the PrometheusRule's rules and their unit tests; the dashboard is valid JSON
#   4. scripts/install_image.sh into a temp prefix, then `backfill --help` from that install
#
#   scripts/check_k8s.sh [--update] [--skip-image]
#
# Tools are cached in $K8S_TOOLS_DIR (default ~/.cache/ai-log-analyzer). The first run builds Helm
# from source with Go (about 2 minutes on 2 cores), later runs reuse it.
set -euo pipefail

HELM_VERSION=v3.19.0
KUBERNETES_VERSION=1.31.0
KUBERNETES_VALIDATE_VERSION=1.37.0
RELEASE=ai-log-analyzer
NAMESPACE=ai-log-analyzer

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools=${K8S_TOOLS_DIR:-$HOME/.cache/ai-log-analyzer}
chart=$root/k8s/ai-log-analyzer
rendered=$root/k8s/rendered/ai-log-analyzer.yaml
monitoring=$root/k8s/monitoring

update=false
check_image=true
for arg in "$@"; do
    case $arg in
        --update) update=true ;;
        --skip-image) check_image=false ;;
        *) echo "usage: $0 [--update] [--skip-image]" >&2; exit 2 ;;
    esac
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step() { printf '\n== %s\n' "$*"; }
die() { printf 'check_k8s: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null || die "$1 is required: $2"; }

install_helm() {
    helm=$tools/helm-$HELM_VERSION/helm
    [[ -x $helm ]] && return
    need go "install Go (https://go.dev/dl/) to build Helm"
    step "building Helm $HELM_VERSION with Go (first run only)"
    local started=$SECONDS
    GOPATH=$tools/go GOBIN=$tools/helm-$HELM_VERSION GOFLAGS=-modcacherw \
        go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
    echo "built in $((SECONDS - started))s"
}

install_kubernetes_validate() {
    local venv=$tools/kubernetes-validate-$KUBERNETES_VALIDATE_VERSION
    kubernetes_validate=$venv/bin/kubernetes-validate
    [[ -x $kubernetes_validate ]] && return
    need python3 "kubernetes-validate is a Python package"
    step "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
}

# promtool comes from Debian's `prometheus` package, unpacked rather than installed: nothing is
# configured and no Prometheus service is started. A promtool on PATH wins.
install_promtool() {
    if command -v promtool >/dev/null; then promtool=$(command -v promtool); return; fi
    promtool=$tools/prometheus-deb/usr/bin/promtool
    [[ -x $promtool ]] && return
    need apt-get "promtool is taken from Debian's prometheus package (or put promtool on PATH)"
    need dpkg-deb "promtool is unpacked from Debian's prometheus package"
    step "fetching promtool from Debian's prometheus package"
    (cd "$work" && apt-get download prometheus) || die "apt-get download prometheus failed (run apt-get update?)"
    dpkg-deb -x "$work"/prometheus_*.deb "$tools/prometheus-deb"
}

render() {
    "$helm" template "$RELEASE" "$chart" --namespace "$NAMESPACE" --kube-version "$KUBERNETES_VERSION" "$@"
}

mkdir -p "$tools"
install_helm
install_kubernetes_validate
install_promtool
echo "helm $("$helm" version --template '{{.Version}}'), kubernetes-validate $KUBERNETES_VALIDATE_VERSION" \
    "(schemas $KUBERNETES_VERSION), $("$promtool" --version 2>&1 | head -1)"

step "helm lint"
"$helm" lint "$chart" --strict --kube-version "$KUBERNETES_VERSION"

step "render the chart; k8s/rendered/ must be up to date"
{
    echo "# Rendered from k8s/ai-log-analyzer with the default values by scripts/check_k8s.sh --update;"
    echo "# do not edit. For 'kubectl apply -f k8s/rendered/' without Helm: the migration Job then runs"
    echo "# as a plain Job (apply it first and wait for it when upgrading the schema)."
    render
} > "$work/rendered.yaml"
if $update; then
    cp "$work/rendered.yaml" "$rendered"
    echo "updated ${rendered#"$root"/}"
elif ! diff -u "$rendered" "$work/rendered.yaml"; then
    die "k8s/rendered/ is stale: run scripts/check_k8s.sh --update"
fi

step "validate the rendered objects against the Kubernetes $KUBERNETES_VERSION schemas"
# The variant takes the chart's other branches: existing claim, CA secret, RWX, no NetworkPolicy
# selectors for the gateway (CIDR instead).
render --set persistence.existingClaim=shared-data \
    --set elasticsearchCA.secretName=es-ca \
    --set 'persistence.accessModes={ReadWriteMany}' \
    --set image.digest=sha256:0000000000000000000000000000000000000000000000000000000000000000 \
    --set 'networkPolicy.egress.pushgateway.cidrs={192.0.2.30/32}' \
    --set networkPolicy.egress.pushgateway.namespaceSelector=null \
    --set networkPolicy.egress.pushgateway.podSelector=null \
    > "$work/variant.yaml"
"$kubernetes_validate" --strict --quiet -k "$KUBERNETES_VERSION" "$rendered" "$work/variant.yaml"
echo "valid: $(grep -c '^kind:' "$rendered") default + $(grep -c '^kind:' "$work/variant.yaml") variant objects"

step "promtool: rules and their unit tests"
python3 - "$monitoring/prometheusrule.yaml" "$work/ai-log-analyzer.rules.yaml" <<'PY'
import sys

import yaml

with open(sys.argv[1]) as source:
    rule = yaml.safe_load(source)
assert rule["kind"] == "PrometheusRule", "prometheusrule.yaml holds no PrometheusRule"
with open(sys.argv[2], "w") as target:
    yaml.safe_dump(rule["spec"], target, sort_keys=False)
PY
cp "$monitoring/prometheusrule_test.yaml" "$work/"
"$promtool" check rules "$work/ai-log-analyzer.rules.yaml"
"$promtool" test rules "$work/prometheusrule_test.yaml"
python3 -m json.tool "$monitoring/grafana-dashboard.json" > /dev/null
echo "grafana-dashboard.json is valid JSON"

if $check_image; then
    step "install the image's contents into a temp prefix (scripts/install_image.sh)"
    started=$SECONDS
    bash "$root/scripts/install_image.sh" "$work/venv" "$work/app" > "$work/install.log" 2>&1 \
        || { tail -40 "$work/install.log"; die "scripts/install_image.sh failed"; }
    echo "installed in $((SECONDS - started))s"
    step "smoke: backfill --help from that install, as the CronJobs run it"
    (cd "$work/app" && "$work/venv/bin/backfill" --help > /dev/null \
        && "$work/venv/bin/python3" scripts/backfill.py --help > /dev/null \
        && "$work/venv/bin/python3" scripts/regular_phase.py --help > /dev/null \
        && "$work/venv/bin/log-analyzer" migrate --help > /dev/null) \
        || die "the installed application does not start"
    echo "backfill, regular_phase and log-analyzer start from the image layout"
fi

printf '\ncheck_k8s: all checks passed\n'
