#!/usr/bin/env bash
# The first command of the README: installs what is needed, builds vnet-agent,
# starts its daemon, deploys the example lab (examples/lab.json) and sends real
# traffic through it, printing what to look at. Run as root.
#
#   sudo scripts/quickstart.sh            # lab "vl", left running to explore
#   sudo scripts/quickstart.sh --down     # the same, then removes the lab
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scripts/install-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"

echo "== building (release)"
cargo build --release --locked -p vnet-agent -p vnet-e2e --bins 2>&1 | tail -n 1
agent="$root/target/release/vnet-agent"
probe="$root/target/release/vnet-probe"
export VNET_AGENT_LAB=${VNET_AGENT_LAB:-vl}
RG=lab

if ! "$agent" lab status -o none 2>/dev/null; then
  echo "== starting the daemon (lab $VNET_AGENT_LAB; log /var/log/vnet-agent-$VNET_AGENT_LAB.log)"
  setsid "$agent" serve >>"/var/log/vnet-agent-$VNET_AGENT_LAB.log" 2>&1 < /dev/null &
  for _ in $(seq 100); do "$agent" lab status -o none 2>/dev/null && break; sleep 0.1; done
fi

echo "== deploying examples/lab.json into resource group $RG"
"$agent" deploy -g "$RG" -f examples/lab.json -o none

ex() { "$agent" exec "$@"; }
echo "== servers: vm1 (10.0.2.4) and the internet host host1 (198.18.100.10) say which source they saw"
# Started directly (not through a shell function) so that $! is the server
# itself: `exec` becomes the program, and the trap ends exactly these PIDs.
"$agent" exec --vm vm1 -- "$probe" serve-tcp 9000 >/dev/null & vm_srv=$!
"$agent" exec --host host1 -- "$probe" serve-tcp 8080 >/dev/null & host_srv=$!
trap 'kill $vm_srv $host_srv 2>/dev/null || true' EXIT
sleep 0.5

private_ip=$(ex --app web1 -- printenv WEBSITE_PRIVATE_IP)
outbound=$("$agent" webapp show -g "$RG" -n web1 | sed -n 's/.*"outboundIpAddresses": "\(.*\)".*/\1/p')
echo
echo "web1 (route-all off): WEBSITE_PRIVATE_IP=$private_ip, outboundIpAddresses=$outbound"
echo -n "  web1 -> vm1 10.0.2.4:9000        vm1 saw       "; ex --app web1 -- "$probe" tcp 10.0.2.4 9000
echo -n "  web1 -> host1 198.18.100.10:8080 host1 saw     "; ex --app web1 -- "$probe" tcp 198.18.100.10 8080
echo "web2 (route-all on: internet traffic enters the VNet, then leaves through the stamp)"
echo -n "  web2 -> host1 198.18.100.10:8080 host1 saw     "; ex --app web2 -- "$probe" tcp 198.18.100.10 8080
echo -n "  vm1 -> web1's private IP (integration is outbound only): "
if ex --vm vm1 -- "$probe" tcp "$private_ip" 80 1000 2>/dev/null; then echo "connected?!"; else echo "refused/dropped, as in Azure"; fi

cat <<MSG

Look at:
  ip netns | grep ^$VNET_AGENT_LAB-                        the namespaces of the lab
  $agent webapp show -g $RG -n web1     the app, its outbound IPs and instances
  $agent resource list -g $RG           every resource, ARM-shaped
  $agent exec --app web1 -- ip route    the app's view (any program works)
  ip netns exec <fabric> nft list ruleset                    the VNet's rules and counters
  $agent down                            remove the whole lab
MSG
if [ "${1:-}" = --down ]; then
  kill $vm_srv $host_srv 2>/dev/null || true
  "$agent" down --purge -o none && echo "lab removed"
fi
