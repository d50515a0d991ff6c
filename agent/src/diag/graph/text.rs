//! The graph as Graphviz dot and as Mermaid.

use std::collections::BTreeMap;

use super::Graph;

fn q(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `graph lab { ... }`: one cluster per VNet holding its fabric and subnets.
pub fn dot(g: &Graph) -> String {
    let mut out = String::from("graph lab {\n  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"sans-serif\"];\n  edge [fontname=\"sans-serif\", fontsize=9];\n");
    let mut clusters: BTreeMap<&str, Vec<&super::Node>> = BTreeMap::new();
    for n in &g.nodes {
        match &n.vnet {
            Some(v) => clusters.entry(v.as_str()).or_default().push(n),
            None => out.push_str(&format!(
                "  {} [label={}, class={}];\n",
                q(&n.id),
                q(&n.label),
                q(n.kind)
            )),
        }
    }
    for (i, (vnet, nodes)) in clusters.iter().enumerate() {
        let name = vnet.rsplit('/').next().unwrap_or(vnet);
        out.push_str(&format!(
            "  subgraph cluster_{i} {{\n    label={};\n",
            q(&format!("VNet {name}"))
        ));
        for n in nodes {
            out.push_str(&format!(
                "    {} [label={}, class={}];\n",
                q(&n.id),
                q(&n.label),
                q(n.kind)
            ));
        }
        out.push_str("  }\n");
    }
    for e in &g.edges {
        let style = if e.kind == "link" { "solid" } else { "dashed" };
        out.push_str(&format!(
            "  {} -- {} [label={}, style={style}];\n",
            q(&e.a),
            q(&e.b),
            q(&e.label)
        ));
    }
    out.push_str("}\n");
    out
}

fn mq(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "#quot;"))
}

/// `flowchart LR`: one subgraph per VNet; links solid, associations dotted.
pub fn mermaid(g: &Graph) -> String {
    let ids: BTreeMap<&str, String> = g
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), format!("n{i}")))
        .collect();
    let mut out = String::from("flowchart LR\n");
    let mut clusters: BTreeMap<&str, Vec<&super::Node>> = BTreeMap::new();
    for n in &g.nodes {
        match &n.vnet {
            Some(v) => clusters.entry(v.as_str()).or_default().push(n),
            None => out.push_str(&format!("  {}[{}]\n", ids[n.id.as_str()], mq(&n.label))),
        }
    }
    for (i, (vnet, nodes)) in clusters.iter().enumerate() {
        let name = vnet.rsplit('/').next().unwrap_or(vnet);
        out.push_str(&format!(
            "  subgraph v{i}[{}]\n",
            mq(&format!("VNet {name}"))
        ));
        for n in nodes {
            out.push_str(&format!("    {}[{}]\n", ids[n.id.as_str()], mq(&n.label)));
        }
        out.push_str("  end\n");
    }
    for e in &g.edges {
        let (Some(a), Some(b)) = (ids.get(e.a.as_str()), ids.get(e.b.as_str())) else {
            continue;
        };
        let arrow = if e.kind == "link" { "---" } else { "-.-" };
        out.push_str(&format!("  {a} {arrow}|{}| {b}\n", mq(&e.label)));
    }
    out
}
