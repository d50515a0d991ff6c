#!/usr/bin/env bash
# Azure's "Tutorial: Isolate back-end communication in Azure App Service with
# Virtual Network integration" (MicrosoftDocs/azure-docs,
# articles/app-service/tutorial-networking-isolate-vnet.md at commit
# 009229e78b65dd47ca20ec410c318ad6668834f6): its commands for the key vault,
# in its order, with `az` renamed `vnet-agent`. The steps before "Create VNet
# and subnets" are the prerequisites the tutorial says it continues from
# (tutorial-connect-msi-keyvault.md: a resource group, an app on a Free Linux
# plan, a key vault with a secret). The Cognitive Services half is left out:
# the lab keeps Cognitive Services accounts as records, which carry no traffic.
set -euo pipefail

groupName=myKVResourceGroup
region=westeurope
appName=${appName:-tutorialapp1}
vaultName=${vaultName:-tutorialvault1}

# Prerequisites (tutorial-connect-msi-keyvault.md)
vnet-agent group create --name $groupName --location $region
vnet-agent appservice plan create --resource-group $groupName --name $appName --sku FREE --is-linux
vnet-agent webapp create --resource-group $groupName --plan $appName --name $appName --runtime "DOTNETCORE:8.0"
vnet-agent keyvault create --resource-group $groupName --name $vaultName --location $region --enable-rbac-authorization
vnet-agent keyvault secret set --vault-name $vaultName --name csresource --value "https://lab.cognitiveservices.azure.com/"

## Create VNet and subnets
# Save vnet name as variable for convenience
vnetName=${vnetName:-tutorialVNet}

vnet-agent network vnet create --resource-group $groupName --location $region --name $vnetName --address-prefixes 10.0.0.0/16
vnet-agent network vnet subnet create --resource-group $groupName --vnet-name $vnetName --name vnet-integration-subnet --address-prefixes 10.0.0.0/24 --delegations Microsoft.Web/serverfarms
vnet-agent network vnet subnet create --resource-group $groupName --vnet-name $vnetName --name private-endpoint-subnet --address-prefixes 10.0.1.0/24 --disable-private-endpoint-network-policies

## Create private DNS zones
vnet-agent network private-dns zone create --resource-group $groupName --name privatelink.vaultcore.azure.net
vnet-agent network private-dns link vnet create --resource-group $groupName --name vaultcore-zonelink --zone-name privatelink.vaultcore.azure.net --virtual-network $vnetName --registration-enabled False

## Create private endpoints
# Create private endpoint for key vault
vaultResourceId=$(vnet-agent keyvault show --name $vaultName --query id --output tsv)
vnet-agent network private-endpoint create --resource-group $groupName --name securekeyvault-pe --location $region --connection-name securekeyvault-pc --private-connection-resource-id $vaultResourceId --group-id vault --vnet-name $vnetName --subnet private-endpoint-subnet
# Create DNS zone group for the endpoint
vnet-agent network private-endpoint dns-zone-group create --resource-group $groupName --endpoint-name securekeyvault-pe --name securekeyvault-zg --private-dns-zone privatelink.vaultcore.azure.net --zone-name privatelink.vaultcore.azure.net
# Block public traffic to key vault
vnet-agent keyvault update --name $vaultName --default-action Deny

## Configure VNet integration in your app
vnet-agent appservice plan update --name $appName --resource-group $groupName --sku S1
vnet-agent webapp update --resource-group $groupName --name $appName --https-only
vnet-agent webapp vnet-integration add --resource-group $groupName --name $appName --vnet $vnetName --subnet vnet-integration-subnet
