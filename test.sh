#!/usr/bin/env bash
# Runs every test: installs what they need first (./install.sh --no-demo with the python3.13 and node22
# runtimes), then the unit tests,
# the agent tests (agent as a host process) and the integration tests (real VMs under QEMU, each
# test class in its own network namespaces). Prints "N passed, N failed" last.
#
#   ./test.sh                 everything
#   ./test.sh --no-install    skip ./install.sh (assets already built)
#   ./test.sh --filter EXPR   pass a filter to every test project (MTP --filter-query / --treenode-filter)
set -uo pipefail
cd "$(dirname "$(readlink -f "$0")")"
ROOT=$PWD
INSTALL=1
EXTRA=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --no-install) INSTALL=0 ;;
    *) EXTRA+=("$1") ;;
  esac
  shift
done

if ((INSTALL)); then
  # The runtime tests boot python3.13 and node22: built here (a no-op when their inputs did not change;
  # a first build: base, then both side by side on base's cached .debs, ~1.5-3 min on a loaded 2-core machine).
  ./install.sh --no-demo --runtime python3.13 --runtime node22 || { echo "test.sh: install failed" >&2; echo "0 passed, 1 failed"; exit 1; }
fi

# Fixture tools of the image tests only (vmsan itself needs none of them): a real registry
# (Debian's docker-registry, started by the tests on a namespace's loopback; its package service is
# not used), skopeo to push the images the tests build, htpasswd for basic auth, musl-gcc for a musl image.
TEST_PKGS=(docker-registry skopeo apache2-utils musl-tools)
missing=()
for p in "${TEST_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "test.sh: installing test fixture tools: ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 \
    || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; } \
    || { echo "test.sh: cannot install ${missing[*]}" >&2; echo "0 passed, 1 failed"; exit 1; }
  # On a systemd host the package starts a registry on *:5000; the tests run their own.
  if [[ " ${missing[*]} " == *" docker-registry "* ]] && command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
    systemctl disable --now docker-registry >&2 || true
  fi
fi

RESULTS=$ROOT/out/test-results
rm -rf "$RESULTS"
mkdir -p "$RESULTS"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
export VMSAN_CLI=${VMSAN_CLI:-/usr/local/bin/vmsan}
# The agent tests run the NativeAOT binary that install.sh put into the guest, not the JIT build.
if [[ -z ${VMSAN_AGENT_PATH:-} && -x $ROOT/out/agent/vmsan-agent ]]; then
  export VMSAN_AGENT_PATH=$ROOT/out/agent/vmsan-agent
fi

# Firecracker's OpenAPI file (v1.17's firecracker-api.yaml) is a test input the repository does not
# ship: FirecrackerContractTests validate every request against it, and report themselves skipped
# when VMSAN_FIRECRACKER_OPENAPI does not point at it.
if [[ -z ${VMSAN_FIRECRACKER_OPENAPI:-} || ! -f ${VMSAN_FIRECRACKER_OPENAPI:-} ]]; then
  echo "test.sh: VMSAN_FIRECRACKER_OPENAPI is not set to Firecracker's OpenAPI file: the Firecracker contract tests will be skipped" >&2
fi

rc=0
for proj in tests/Vmsan.UnitTests tests/Vmsan.Agent.Tests tests/Vmsan.IntegrationTests; do
  name=$(basename "$proj")
  echo "==> $name" >&2
  dotnet build "$proj" -c Release -v quiet -nologo >&2 || { rc=1; echo "build of $name failed" >&2; echo "$name: build failed" >> "$RESULTS/build-failures"; continue; }
  dotnet test --project "$proj" -c Release --no-build --report-trx --report-trx-filename "$name.trx" \
    --results-directory "$RESULTS" "${EXTRA[@]}" || rc=1
done

# Count outcomes from the TRX reports (the runners' own summaries are per project).
passed=0 failed=0 skipped=0
for trx in "$RESULTS"/*.trx; do
  [[ -f $trx ]] || continue
  c=$(grep -o '<Counters [^>]*' "$trx" | head -1)
  get() { echo "$c" | grep -o " $1=\"[0-9]*\"" | grep -o '[0-9]*' || echo 0; }
  passed=$((passed + $(get passed)))
  failed=$((failed + $(get failed) + $(get error) + $(get timeout) + $(get aborted)))
  skipped=$((skipped + $(get notExecuted)))
done
if [[ -f $RESULTS/build-failures ]]; then
  failed=$((failed + $(wc -l < "$RESULTS/build-failures")))
fi
((failed > 0)) && rc=1
((passed == 0)) && rc=1
echo "$passed passed, $failed failed, $skipped skipped"
exit $rc
