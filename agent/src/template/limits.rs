//! ARM's template limits ("Template limits" in ARM's best practices and
//! "Resolve errors for job size exceeded"): a template of at most 4 MB once
//! expanded, 256 parameters, 256 variables, 64 outputs, 800 resources
//! (copies counted), 24,576 characters in one expression. Checked before
//! anything is evaluated or applied, with the limit named.

use serde_json::{Map, Value};

use super::expr::invalid_template;
use crate::model::AzureError;

pub const MAX_TEMPLATE_BYTES: usize = 4 * 1024 * 1024;
pub const MAX_PARAMETERS: usize = 256;
pub const MAX_VARIABLES: usize = 256;
pub const MAX_OUTPUTS: usize = 64;
pub const MAX_RESOURCES: usize = 800;
pub const MAX_EXPRESSION_CHARS: usize = 24_576;

fn count(template: &Map<String, Value>, key: &str) -> usize {
    template
        .get(key)
        .and_then(Value::as_object)
        .map_or(0, Map::len)
}

/// The limits a template shows before it is expanded.
pub fn check_template(template: &Map<String, Value>) -> Result<(), AzureError> {
    let size = serde_json::to_vec(template).map_or(0, |b| b.len());
    if size > MAX_TEMPLATE_BYTES {
        return Err(AzureError::bad_request(
            "DeploymentJobSizeExceeded",
            format!(
                "The template is {:.1} MB; a template can't exceed 4 MB. Split it into linked or nested templates.",
                size as f64 / 1_048_576.0
            ),
        ));
    }
    for (key, limit) in [
        ("parameters", MAX_PARAMETERS),
        ("variables", MAX_VARIABLES),
        ("outputs", MAX_OUTPUTS),
    ] {
        let n = count(template, key);
        if n > limit {
            return Err(invalid_template(format!(
                "Deployment template validation failed: the template has {n} {key}; the limit is {limit}. Combine values into objects."
            )));
        }
    }
    if let Some(path) = long_expression(&Value::Object(template.clone()), "") {
        return Err(invalid_template(format!(
            "Deployment template validation failed: the template language expression at '{path}' is longer than {MAX_EXPRESSION_CHARS} characters."
        )));
    }
    Ok(())
}

/// The path of the first `[...]` expression longer than the limit.
fn long_expression(v: &Value, path: &str) -> Option<String> {
    match v {
        Value::String(s) => {
            (s.starts_with('[') && !s.starts_with("[[") && s.chars().count() > MAX_EXPRESSION_CHARS)
                .then(|| path.to_string())
        }
        Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, x)| long_expression(x, &format!("{path}[{i}]"))),
        Value::Object(m) => m.iter().find_map(|(k, x)| {
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            long_expression(x, &p)
        }),
        _ => None,
    }
}

/// The limit on what the template expanded to.
pub fn check_expansion(resources: usize) -> Result<(), AzureError> {
    if resources > MAX_RESOURCES {
        return Err(invalid_template(format!(
            "Deployment template validation failed: the template expands to {resources} resources (copies counted); the limit is {MAX_RESOURCES}. Use nested templates to deploy more."
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn counts_over_arms_limits_are_refused_naming_the_limit() {
        let many = |n: usize| -> Value {
            Value::Object(
                (0..n)
                    .map(|i| (format!("p{i}"), json!({"type": "string"})))
                    .collect(),
            )
        };
        assert!(check_template(&template(json!({"parameters": many(256)}))).is_ok());
        let e = check_template(&template(json!({"parameters": many(257)}))).unwrap_err();
        assert_eq!(e.code, "InvalidTemplate");
        assert!(
            e.message.contains("257 parameters") && e.message.contains("256"),
            "{}",
            e.message
        );
        let e = check_template(&template(json!({"outputs": many(65)}))).unwrap_err();
        assert!(e.message.contains("limit is 64"), "{}", e.message);
        assert!(check_expansion(800).is_ok());
        assert!(check_expansion(801)
            .unwrap_err()
            .message
            .contains("801 resources"));
    }

    #[test]
    fn size_and_expression_length() {
        let big = "x".repeat(MAX_TEMPLATE_BYTES);
        let e = check_template(&template(json!({"variables": {"v": big}}))).unwrap_err();
        assert_eq!(e.code, "DeploymentJobSizeExceeded");
        assert!(e.message.contains("4 MB"), "{}", e.message);
        let long = format!("[concat('{}')]", "a".repeat(MAX_EXPRESSION_CHARS));
        let e = check_template(&template(json!({"variables": {"v": long}}))).unwrap_err();
        assert!(e.message.contains("'variables.v'"), "{}", e.message);
        // An escaped literal is not an expression.
        let literal = format!("[[{}", "a".repeat(MAX_EXPRESSION_CHARS));
        assert!(check_template(&template(json!({"variables": {"v": literal}}))).is_ok());
    }
}
