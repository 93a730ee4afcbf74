#!/usr/bin/env bash
# Install Go and golang.org/x/mod (sumdb/note, sumdb/tlog) for the transparency interop
# test, if they are missing. Idempotent and quiet; called from .ci/run.
set -euo pipefail
if command -v go >/dev/null 2>&1 && [ -d /usr/share/gocode/src/golang.org/x/mod/sumdb/tlog ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq golang-go golang-golang-x-mod-dev >/dev/null
