#!/usr/bin/env bash
# Runs every test. Installs what the tests need first (redis-server, prometheus/promtool and
# docker-compose from Debian's packages) when missing, so it works on a fresh machine with only the .NET 10 SDK.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
if [ ${#need[@]} -gt 0 ]; then
  echo "Installing ${need[*]} ..."
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The prometheus package starts a system service on :9090; the tests run their own on free ports.
if command -v systemctl >/dev/null 2>&1; then systemctl stop prometheus >/dev/null 2>&1 || true; fi

# The npm clients of the Responses tests (the openai package, the AI SDK) and of the Messages tests
# (the Anthropic SDK); Node 20+ is on the machine. Installed exactly as locked, again whenever the lock file changed.
for clients in tests/clients/openai tests/clients/anthropic; do
  if [ ! -f "$clients/node_modules/.package-lock.json" ] || [ "$clients/package-lock.json" -nt "$clients/node_modules/.package-lock.json" ]; then
    (cd "$clients" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done

# dotnet test builds only the test projects and what they reference: the bench's projects (not tests) are
# built here, so that a change that breaks them can't land unseen.
dotnet build LlmGateway.sln -c Release -nologo -v q -clp:ErrorsOnly

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
dotnet test LlmGateway.sln -c Release "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One plain summary line over all test assemblies.
awk '/(Passed!|Failed!) +- +Failed:/ { gsub(",", ""); for (i = 1; i <= NF; i++) { if ($i == "Failed:") f += $(i+1); if ($i == "Passed:") p += $(i+1); if ($i == "Skipped:") s += $(i+1) } }
     END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
