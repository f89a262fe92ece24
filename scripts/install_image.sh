#!/usr/bin/env bash
# Installs the application exactly as the container image holds it, so CI can test the image's
# contents where no image can be built: a virtualenv at PREFIX with the locked dependencies, and
# the application at APP_DIR (default PREFIX/app), installed editable so `core` and the CronJobs'
# `scripts/*.py` are one copy and `migrations/` sits beside `core/` where the store expects it.
#
#   scripts/install_image.sh PREFIX [APP_DIR]
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: $0 PREFIX [APP_DIR]" >&2
    exit 2
fi
prefix=$1
app_dir=${2:-$1/app}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-python3}

"$python" -m venv "$prefix"
# Hashes make every install byte-for-byte the tested one; wheels only, so no compiler is needed.
"$prefix/bin/pip" install --no-deps --require-hashes --only-binary=:all: -r "$src/requirements.lock"

mkdir -p "$app_dir/scripts"
cp -R "$src/pyproject.toml" "$src/README.md" "$src/core" "$src/migrations" "$app_dir/"
cp "$src"/scripts/*.py "$app_dir/scripts/"
find "$app_dir" -name __pycache__ -prune -exec rm -rf {} +
# --no-build-isolation: build with the locked setuptools instead of fetching an unpinned one.
"$prefix/bin/pip" install --no-deps --no-build-isolation --editable "$app_dir"
"$prefix/bin/pip" check
