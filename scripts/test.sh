#!/usr/bin/env bash
# The whole test suite: unit tests and end-to-end tests with real namespaces
# and real traffic, all inside a sandbox (fresh net + mount namespaces), so
# nothing touches this machine's own network. Run as root.
#
#   scripts/test.sh [extra cargo test args]
#
# VNET_E2E_REQUIRED=1 turns a skipped end-to-end test (no root, no sandbox)
# into a failure; CI sets it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"

cargo build --workspace --all-targets --locked 2>&1 | tail -n 3
# The fuzzers' short run (docs/fuzzing.md): 30 s per target over the kept
# corpora; pure logic, so outside the sandbox. A crash fails the suite.
cargo xtask fuzz --short
# The sandbox has no network: everything is built above, so run offline.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
scripts/sandbox.sh cargo test --workspace --offline --locked --no-fail-fast "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
# One closing line for the whole run (cargo prints one per test binary).
awk '/^test result:/ { p += $4; f += $6 } END { printf "summary: %d passed, %d failed\n", p, f }' "$log"
exit "$rc"
