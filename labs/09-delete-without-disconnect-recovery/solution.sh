# The seed's recovery: the same names again, integrate, disconnect, delete,
# then the subnet is free.
vnet-agent appservice plan create -g "$G" -n plan1 --sku P1v3 --is-linux -o none
vnet-agent webapp create -g "$G" -n web1 --plan plan1 --vnet vnet1 --subnet integration -o none
vnet-agent webapp vnet-integration remove -g "$G" -n web1 -o none
vnet-agent resource delete --ids "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/$G/providers/Microsoft.Web/sites/web1" -o none
vnet-agent resource delete --ids "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/$G/providers/Microsoft.Web/serverfarms/plan1" -o none
vnet-agent network vnet subnet delete -g "$G" --vnet-name vnet1 -n integration -o none
