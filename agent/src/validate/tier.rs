//! Pricing tiers and App Service deployments (seed, "Limitations": "available
//! from all App Service deployments in Premium v2 and Premium v3 ... also in
//! Basic and Standard tier but only from newer App Service deployments"; "isn't
//! available for Isolated plan apps in an App Service Environment").

use serde_json::json;

use crate::model::{
    AzureError, DeploymentGeneration, Inventory, LabState, ResourceKind, ServerFarm, Site,
    TierClass, DEPLOYMENT_GENERATION_PROPERTY,
};

/// Give every plan its deployment generation, written back as
/// `properties.deploymentGeneration`: a stored plan keeps the one it was
/// created with (scaling a Premium v3 plan down to Basic keeps `Current`); a
/// new Premium v3 plan lands on `Current`; any other new plan takes what the
/// template says (default `Current`). A `Legacy` plan cannot scale up to
/// Premium v3: those tiers only exist on the newest deployments.
pub(crate) fn settle_generations(old: &Inventory, next: &mut LabState) -> Result<(), AzureError> {
    for res in next.resources.values_mut() {
        if ResourceKind::from_type(&res.type_) != Some(ResourceKind::ServerFarm) {
            continue;
        }
        // A malformed plan is reported by Inventory::parse.
        let Ok(plan) = ServerFarm::from_resource(res) else {
            continue;
        };
        let generation = match old.plan(&plan.id) {
            Some(stored) => {
                if plan.requires_current_deployment()
                    && stored.deployment_generation == DeploymentGeneration::Legacy
                {
                    return Err(AzureError::bad_request(
                        "SkuNotAvailableOnLegacyDeployment",
                        format!(
                            "App Service plan '{}' runs on an older App Service deployment \
                             (properties.deploymentGeneration: Legacy) and cannot scale to {} ({}): that tier only \
                             exists on the newest deployments. Create a new plan in {} instead.",
                            plan.name, plan.sku_name, plan.tier, plan.tier
                        ),
                    ));
                }
                stored.deployment_generation
            }
            None if plan.requires_current_deployment() => DeploymentGeneration::Current,
            None => plan.deployment_generation,
        };
        if let Some(props) = res.properties.as_object_mut() {
            props.insert(
                DEPLOYMENT_GENERATION_PROPERTY.into(),
                json!(generation.as_str()),
            );
        }
    }
    Ok(())
}

/// Site `site` may use regional integration on `plan`'s tier and deployment.
pub(crate) fn check(plan: &ServerFarm, site: &Site) -> Result<(), AzureError> {
    let refuse = |code: &str, why: String| {
        Err(AzureError::bad_request(
            code,
            format!(
                "Site '{}' cannot use virtual network integration: {why}",
                site.name
            ),
        ))
    };
    match plan.tier_class() {
        TierClass::Everywhere => Ok(()),
        TierClass::NewerDeploymentsOnly
            if plan.deployment_generation == DeploymentGeneration::Current =>
        {
            Ok(())
        }
        TierClass::NewerDeploymentsOnly => refuse(
            "VnetIntegrationNotSupportedOnLegacyDeployment",
            format!(
                "its plan '{}' is in the {} tier on an older App Service deployment \
                 (properties.deploymentGeneration: Legacy). On older deployments the feature is only available \
                 from Premium v2: scale the plan to Premium v2, or create a new plan in Premium v3 (newest \
                 deployments only) and scale it down to Basic or Standard after it is created.",
                plan.name, plan.tier
            ),
        ),
        TierClass::AppServiceEnvironment => refuse(
            "VnetIntegrationNotSupportedInAppServiceEnvironment",
            format!(
                "its plan '{}' is in the {} tier, i.e. in an App Service Environment. An App Service Environment \
                 is deployed directly into your virtual network, so its apps already reach resources there; the \
                 virtual network integration feature isn't available for Isolated plans. Remove \
                 virtualNetworkSubnetId, or use a Basic to Premium v3 plan outside the environment.",
                plan.name, plan.tier
            ),
        ),
        TierClass::Unsupported => refuse(
            "VnetIntegrationNotSupportedForSku",
            format!(
                "its plan '{}' is in the {} tier. Use Basic, Standard, Premium, Premium v2/v3 or Elastic Premium.",
                plan.name, plan.tier
            ),
        ),
    }
}
