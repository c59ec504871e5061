#!/usr/bin/env bash
# Interop test: Microsoft's own SDKs (azidentity, msgraph-sdk-go, azsecrets)
# against `rotor sim`. A separate module so msgraph-sdk-go's heavy build never
# touches rotor's main module. The first (cold) build takes minutes and ~4 GB.
set -euo pipefail
cd "$(dirname "$0")"
# -timeout covers building rotor (cold: modernc sqlite) inside the test.
exec go test -count=1 -timeout 30m "$@" ./...
