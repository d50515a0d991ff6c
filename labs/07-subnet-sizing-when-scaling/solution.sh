# Create a /26 (59 usable addresses), move the integration to it, then
# scale: the scale needs 3 old + 10 new addresses at once.
vnet-agent network vnet subnet create -g "$G" --vnet-name vnet1 -n integration2 \
  --address-prefixes 10.0.1.64/26 --delegations Microsoft.Web/serverFarms -o none
vnet-agent webapp vnet-integration add -g "$G" -n web1 --vnet vnet1 --subnet integration2 -o none
vnet-agent appservice plan update -g "$G" -n plan1 --number-of-workers 10 -o none
