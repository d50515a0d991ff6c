//! Reading ARM `properties` JSON with errors that name the resource and the
//! property path, the way ARM's `InvalidRequestFormat` does.

use serde_json::Value;

use super::{AzureError, GenericResource, ResourceId};

/// `Microsoft.Web/sites 'web1'`: how messages name a resource.
pub(crate) fn label(res: &GenericResource) -> String {
    format!("{} '{}'", res.type_, res.name)
}

/// The value at a dotted path (`properties.siteConfig.appCommandLine`) of the
/// whole resource JSON (`properties`, `sku`, `kind` ...).
pub(crate) fn at<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(root, |v, key| v.get(key))
        .filter(|v| !v.is_null())
}

/// `InvalidRequestFormat` naming the resource and the property.
pub(crate) fn invalid(res: &GenericResource, path: &str, what: &str) -> AzureError {
    AzureError::bad_request(
        "InvalidRequestFormat",
        format!("{}: property '{path}' {what}.", label(res)),
    )
    .with_target(path.to_string())
}

/// Typed reads of one resource's JSON.
pub(crate) struct Props<'a> {
    pub res: &'a GenericResource,
    root: Value,
}

impl<'a> Props<'a> {
    pub fn new(res: &'a GenericResource) -> Self {
        let root = serde_json::json!({
            "properties": res.properties,
            "sku": res.sku,
            "kind": res.kind,
        });
        Props { res, root }
    }

    pub fn value(&self, path: &str) -> Option<&Value> {
        at(&self.root, path)
    }

    pub fn opt_str(&self, path: &str) -> Result<Option<String>, AzureError> {
        str_in(self.res, self.value(path), path)
    }

    pub fn opt_bool(&self, path: &str) -> Result<Option<bool>, AzureError> {
        bool_in(self.res, self.value(path), path)
    }

    pub fn opt_u32(&self, path: &str) -> Result<Option<u32>, AzureError> {
        match self.value(path) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| invalid(self.res, path, "must be a non-negative integer")),
            Some(Value::String(s)) => s
                .parse()
                .map(Some)
                .map_err(|_| invalid(self.res, path, "must be a non-negative integer")),
            Some(_) => Err(invalid(self.res, path, "must be a non-negative integer")),
        }
    }

    pub fn array(&self, path: &str) -> Result<&[Value], AzureError> {
        array_in(self.res, self.value(path), path)
    }

    pub fn opt_id(&self, path: &str) -> Result<Option<ResourceId>, AzureError> {
        id_in(self.res, self.value(path), path)
    }
}

pub(crate) fn str_in(
    res: &GenericResource,
    v: Option<&Value>,
    path: &str,
) -> Result<Option<String>, AzureError> {
    match v {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(res, path, "must be a string")),
    }
}

pub(crate) fn bool_in(
    res: &GenericResource,
    v: Option<&Value>,
    path: &str,
) -> Result<Option<bool>, AzureError> {
    match v {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(_) => Err(invalid(res, path, "must be true or false")),
    }
}

pub(crate) fn array_in<'v>(
    res: &GenericResource,
    v: Option<&'v Value>,
    path: &str,
) -> Result<&'v [Value], AzureError> {
    match v {
        None => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(invalid(res, path, "must be an array")),
    }
}

pub(crate) fn id_in(
    res: &GenericResource,
    v: Option<&Value>,
    path: &str,
) -> Result<Option<ResourceId>, AzureError> {
    match str_in(res, v, path)? {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|e: AzureError| {
            AzureError::bad_request(
                e.code,
                format!(
                    "{}: property '{path}' is not a full resource id: {} \
                     Write the full id, e.g. /subscriptions/<sub>/resourceGroups/<rg>/providers/\
                     Microsoft.Network/virtualNetworks/<vnet>/subnets/<subnet>.",
                    label(res),
                    e.message
                ),
            )
            .with_target(path.to_string())
        }),
    }
}
