# The mistake: the app and its plan deleted while web1 is still integrated.
vnet-agent resource delete --ids "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/$G/providers/Microsoft.Web/sites/web1" -o none
vnet-agent resource delete --ids "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/$G/providers/Microsoft.Web/serverfarms/plan1" -o none
