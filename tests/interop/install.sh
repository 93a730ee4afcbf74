#!/bin/sh
# Install ts-mls and its pinned peers for the interop tests (test-only dependency).
# Idempotent: runs `npm ci` only when node_modules is missing or older than the lockfile.
# Quiet on success; exits non-zero with a clear message when npm is absent or npm ci fails.
set -eu
cd "$(dirname "$0")"
if ! command -v npm >/dev/null 2>&1; then
    echo "tests/interop/install.sh: npm not found on PATH (needed to install ts-mls)" >&2
    exit 127
fi
stamp=node_modules/.package-lock.json
if [ -f "$stamp" ] && [ ! package-lock.json -nt "$stamp" ]; then
    exit 0
fi
log=$(npm ci --no-audit --no-fund --loglevel=error 2>&1) || {
    echo "tests/interop/install.sh: npm ci failed:" >&2
    echo "$log" >&2
    exit 1
}
touch "$stamp"
