#!/usr/bin/env bash
# The whole test suite, as CI runs it: install the package with its test tools, start the real
# PostgreSQL and Elasticsearch (scripts/services.sh), check the Helm chart, alert rules and image
# install with pinned tools (scripts/check_k8s.sh), install Debian's Chromium and the Adaptive Cards
# renderer (tests/cards/) for the rendered-page and card tests, lint, then pytest. Extra arguments go
# to pytest.
# A skipped test fails the run (tests/conftest.py), and so does pytest's exit code 5 (no tests).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -e '.[test]'
bash scripts/services.sh start
eval "$(bash scripts/services.sh env)"
bash scripts/check_k8s.sh
if ! command -v chromium >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
npm ci --prefix tests/cards --no-audit --no-fund --silent
export AI_LOG_ANALYZER_NO_SKIP=1

python3 -m ruff check .
set +e
python3 -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "test.sh: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit "$rc"
