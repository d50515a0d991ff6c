#!/usr/bin/env bash
# Runs a command in fresh network and mount namespaces with a private
# /run/netns, so nothing it does can touch the machine's own network: the
# namespaces it makes are visible only inside, and vanish with it.
#
#   scripts/sandbox.sh CMD [ARGS...]
#
# Inside: VNET_SANDBOX=1 is set, `lo` is up, /run/netns is an empty tmpfs.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
  echo "sandbox.sh: needs root (network namespaces); run as root or with sudo" >&2
  exit 77
fi
if [ "$#" -eq 0 ]; then
  echo "usage: scripts/sandbox.sh CMD [ARGS...]" >&2
  exit 2
fi

if [ "${VNET_SANDBOX_INNER:-}" != 1 ]; then
  export VNET_SANDBOX_INNER=1
  exec unshare --net --mount --propagation private -- "$0" "$@"
fi

# Inside the new namespaces.
mkdir -p /run/netns
mount -t tmpfs -o mode=0755,size=16m vnet-sandbox /run/netns
ip link set lo up
export VNET_SANDBOX=1
unset VNET_SANDBOX_INNER
exec "$@"
