//! az's output options: `--query` (JMESPath, applied first) and `-o
//! json|jsonc|table|tsv|yaml|none`.

use anyhow::{Context, Result};
use serde_json::Value;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq)]
pub enum OutputFormat {
    Json,
    Jsonc,
    Table,
    Tsv,
    Yaml,
    None,
    /// Graphviz (`lab graph` only).
    Dot,
    /// Mermaid (`lab graph` only).
    Mermaid,
    /// One self-contained HTML page (`lab graph` only).
    Html,
}

/// `--query` over `value`, as az evaluates it (JMESPath).
pub fn query(value: &Value, expression: &str) -> Result<Value> {
    let expr = jmespath::compile(expression)
        .with_context(|| format!("--query {expression:?} is not valid JMESPath"))?;
    let data = jmespath::Variable::from_json(&value.to_string()).map_err(anyhow::Error::msg)?;
    let result = expr
        .search(data)
        .map_err(|e| anyhow::anyhow!("--query {expression:?}: {e}"))?;
    Ok(serde_json::to_value(&*result)?)
}

/// The text of `value` in `format`.
pub fn render(value: &Value, format: OutputFormat) -> String {
    match format {
        OutputFormat::None => String::new(),
        // Only `lab graph` draws; elsewhere these print the JSON.
        OutputFormat::Dot | OutputFormat::Mermaid | OutputFormat::Html => {
            serde_json::to_string_pretty(value).unwrap_or_default() + "\n"
        }
        OutputFormat::Json | OutputFormat::Jsonc => {
            serde_json::to_string_pretty(value).unwrap_or_default() + "\n"
        }
        OutputFormat::Table => super::table::render(value) + "\n",
        OutputFormat::Tsv => tsv(value),
        OutputFormat::Yaml => {
            let mut out = String::new();
            yaml(value, 0, &mut out);
            if !out.ends_with('\n') {
                out.push('\n');
            }
            out
        }
    }
}

/// az's tsv: one line per element of a list, the scalar values of an object
/// (in order) separated by tabs; nested objects and lists are left out.
fn tsv(value: &Value) -> String {
    let line = |v: &Value| -> String {
        match v {
            Value::Object(m) => m
                .values()
                .filter(|x| !x.is_object() && !x.is_array())
                .map(scalar)
                .collect::<Vec<_>>()
                .join("\t"),
            Value::Array(a) => a
                .iter()
                .filter(|x| !x.is_object() && !x.is_array())
                .map(scalar)
                .collect::<Vec<_>>()
                .join("\t"),
            other => scalar(other),
        }
    };
    match value {
        Value::Array(items) => items.iter().map(|i| line(i) + "\n").collect(),
        Value::Null => String::new(),
        other => line(other) + "\n",
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(b) => {
            if *b {
                "True".into()
            } else {
                "False".into()
            }
        }
        other => other.to_string(),
    }
}

/// Block-style YAML, strings quoted only where YAML would misread them.
fn yaml(v: &Value, indent: usize, out: &mut String) {
    let pad = "  ".repeat(indent);
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                match x {
                    Value::Object(c) if !c.is_empty() => {
                        out.push_str(&format!("{pad}{}:\n", key(k)));
                        yaml(x, indent + 1, out);
                    }
                    Value::Array(c) if !c.is_empty() => {
                        out.push_str(&format!("{pad}{}:\n", key(k)));
                        yaml(x, indent, out);
                    }
                    _ => out.push_str(&format!("{pad}{}: {}\n", key(k), flow(x))),
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for x in a {
                match x {
                    Value::Object(c) if !c.is_empty() => {
                        let mut inner = String::new();
                        yaml(x, indent + 1, &mut inner);
                        // The first key goes on the dash's line.
                        let trimmed = inner.trim_start_matches(' ');
                        out.push_str(&format!("{pad}- {trimmed}"));
                    }
                    Value::Array(c) if !c.is_empty() => {
                        out.push_str(&format!("{pad}-\n"));
                        yaml(x, indent + 1, out);
                    }
                    _ => out.push_str(&format!("{pad}- {}\n", flow(x))),
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", flow(other))),
    }
}

fn key(k: &str) -> String {
    if k.chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c))
        && !k.is_empty()
    {
        k.to_string()
    } else {
        format!("'{}'", k.replace('\'', "''"))
    }
}

fn flow(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        Value::String(s) => {
            let plain = !s.is_empty()
                && !s.starts_with([
                    ' ', '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>',
                    '\'', '"', '%', '@', '`',
                ])
                && !s.contains(": ")
                && !s.contains(" #")
                && !s.ends_with(' ')
                && !s.contains('\n')
                && s.parse::<f64>().is_err()
                && !["true", "false", "null", "yes", "no", "on", "off", "~"]
                    .contains(&s.to_ascii_lowercase().as_str());
            if plain {
                s.clone()
            } else {
                format!("'{}'", s.replace('\'', "''").replace('\n', "\\n"))
            }
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn query_is_jmespath_as_az_has_it() {
        let v =
            json!([{"name": "a", "properties": {"x": 1}}, {"name": "b", "properties": {"x": 2}}]);
        assert_eq!(query(&v, "[].name").unwrap(), json!(["a", "b"]));
        assert_eq!(
            query(&v, "[?properties.x > `1`].name | [0]").unwrap(),
            json!("b")
        );
        assert_eq!(
            query(&v, "[0].{n: name, x: properties.x}").unwrap(),
            json!({"n": "a", "x": 1})
        );
        assert!(query(&v, "[?").is_err());
    }

    #[test]
    fn tsv_and_yaml() {
        let v = json!([{"name": "a", "n": 1, "on": true, "nested": {"x": 1}}, {"name": "b", "n": 2, "on": false}]);
        // Fields in key order (the lab keeps JSON objects sorted).
        assert_eq!(render(&v, OutputFormat::Tsv), "1\ta\tTrue\n2\tb\tFalse\n");
        assert_eq!(render(&json!("10.0.0.4"), OutputFormat::Tsv), "10.0.0.4\n");
        let y = render(
            &json!({"name": "web1", "tags": {}, "ips": ["1.2.3.4"], "props": {"on": true, "n": "007"}}),
            OutputFormat::Yaml,
        );
        assert_eq!(
            y,
            "ips:\n- 1.2.3.4\nname: web1\nprops:\n  n: '007'\n  on: true\ntags: {}\n"
        );
        assert_eq!(render(&json!(1), OutputFormat::None), "");
    }
}
