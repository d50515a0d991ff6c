#!/usr/bin/env bash
# An app's own network test, run inside the lab as a CI job runs it
# (docs/ci.md; `.ci/run` runs these same steps through tests/tests/user_ci.rs).
#
#   scripts/user-ci.sh TEMPLATE RESOURCE_GROUP APP -- TEST COMMAND...
#
# 1. starts a daemon for the lab (unless one answers on $VNET_AGENT_SOCKET);
# 2. deploys TEMPLATE into RESOURCE_GROUP;
# 3. starts a packet capture of APP's instance 0 (its vNIC);
# 4. runs TEST COMMAND inside APP's sandbox (instance 0) with `vnet-agent exec`;
# 5. on failure keeps, in $ARTIFACTS (default ./vnet-artifacts): the capture
#    (app.cap, opens in tcpdump/Wireshark), the lab's status, the app's
#    effective routes and NSG rules, the daemon's log;
# 6. always tears the lab down (and ends the daemon it started, by PID).
# Exits with the test's status. Run as root (or as a member of the socket's
# group, with a daemon already running as a service).
set -uo pipefail

if [ "$#" -lt 5 ] || [ "$4" != "--" ]; then
  echo "usage: $0 TEMPLATE RESOURCE_GROUP APP -- TEST COMMAND..." >&2
  exit 2
fi
template=$1 group=$2 app=$3
shift 4
agent=${VNET_AGENT:-vnet-agent}
artifacts=${ARTIFACTS:-$PWD/vnet-artifacts}
mkdir -p "$artifacts"
state=${VNET_AGENT_STATE_DIR:-/var/lib/vnet-agent}
socket=${VNET_AGENT_SOCKET:-$state/agent.sock}
export VNET_AGENT_STATE_DIR=$state VNET_AGENT_SOCKET=$socket

daemon_pid=
log=$artifacts/daemon.log
if ! "$agent" lab status >/dev/null 2>&1; then
  "$agent" serve >"$log" 2>&1 &
  daemon_pid=$!
  for _ in $(seq 100); do
    "$agent" lab status >/dev/null 2>&1 && break
    sleep 0.1
  done
fi

finish() {
  "$agent" down >/dev/null 2>&1 || true
  if [ -n "$daemon_pid" ]; then
    kill "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
  fi
}
trap finish EXIT

if ! "$agent" deployment group create -g "$group" -f "$template" -o none; then
  echo "user-ci: the template did not deploy" >&2
  exit 1
fi
region=$("$agent" webapp show -g "$group" -n "$app" --query location -o tsv)
capture=ci-$app
"$agent" network watcher packet-capture create -g "$group" -n "$capture" --app "$app" \
  --file-path "$artifacts/app.cap" --time-limit 3600 -o none \
  || echo "user-ci: no capture (is $app integrated with a VNet?)" >&2

"$agent" exec --app "$app" -- "$@"
rc=$?

"$agent" network watcher packet-capture stop -l "$region" -n "$capture" -o none 2>/dev/null || true
if [ "$rc" -ne 0 ]; then
  echo "user-ci: the test failed ($rc); artifacts in $artifacts" >&2
  "$agent" lab status >"$artifacts/status.json" 2>&1 || true
  "$agent" webapp show-effective-route-table -g "$group" -n "$app" >"$artifacts/effective-routes.json" 2>&1 || true
  "$agent" webapp list-effective-nsg -g "$group" -n "$app" >"$artifacts/effective-nsg.json" 2>&1 || true
else
  rm -f "$artifacts/app.cap"
fi
exit "$rc"
