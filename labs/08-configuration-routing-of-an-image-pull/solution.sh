# Route the image pull (configuration traffic) through the integration.
vnet-agent webapp config set -g "$G" -n web1 --vnet-image-pull-enabled true -o none
