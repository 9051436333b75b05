#!/usr/bin/env bash
# Runs every test. Installs missing test dependencies first (scripts/deps.sh);
# with CI=true a dependency that is still missing fails tests instead of
# skipping them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
go vet ./...
go test -count=1 -timeout 40m "$@" ./...
