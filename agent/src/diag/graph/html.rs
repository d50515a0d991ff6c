//! The graph as one self-contained HTML page: no network fetch, inline
//! style and script. The page draws the nodes in columns (internet side on
//! the left, VMs and apps on the right), the links as SVG lines labelled
//! with their addresses and packet counters, each NSG with its rules' hit
//! counts; served by `lab graph --serve`, it polls `counters` every two
//! seconds and updates them.

use serde_json::Value;

use super::Graph;

/// The page, with the counters known when it was made.
pub fn html(g: &Graph, counters: &Value) -> String {
    let embed = |v: String| v.replace("</", "<\\/");
    let graph = embed(serde_json::to_string(g).unwrap_or_default());
    let counters = embed(counters.to_string());
    format!(
        r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vnet-agent lab graph</title>
<style>
body {{ font: 13px sans-serif; margin: 0; background: #fafafa; }}
#canvas {{ position: relative; }}
svg {{ position: absolute; left: 0; top: 0; pointer-events: none; }}
.node {{ position: absolute; width: 220px; padding: 6px 8px; border: 1px solid #888; border-radius: 8px; background: #fff; box-sizing: border-box; }}
.node .kind {{ color: #666; font-size: 11px; }}
.vnet {{ border-color: #1f6feb; background: #eef4ff; }}
.subnet {{ border-style: dashed; }}
.nsg {{ border-color: #b00; }}
.vm, .app {{ border-color: #2a7; }}
.internet, .internetHost {{ border-color: #a60; }}
.rules {{ margin: 4px 0 0; padding-left: 14px; font-size: 11px; }}
.hits {{ font-weight: bold; }}
text {{ font-size: 10px; fill: #333; }}
h1 {{ font-size: 16px; margin: 8px; }}
#status {{ margin: 0 8px; color: #666; }}
</style></head>
<body>
<h1>Lab graph</h1><div id="status">counters as of the page's creation</div>
<div id="canvas"><svg id="edges"></svg></div>
<script type="application/json" id="graph">{graph}</script>
<script type="application/json" id="counters">{counters}</script>
<script>
const graph = JSON.parse(document.getElementById('graph').textContent);
const column = {{internet:0, internetHost:0, onPremisesHost:0, onPremisesSite:0, stamp:1, gateway:1, vnet:2, service:2, subnet:3, worker:3, natGateway:4, routeTable:4, nsg:4, privateEndpoint:4, app:5, vm:5}};
const canvas = document.getElementById('canvas');
const svg = document.getElementById('edges');
const rows = {{}};
const boxes = {{}};
for (const n of graph.nodes) {{
  const c = column[n.kind] ?? 3;
  const r = rows[c] = (rows[c] ?? 0) + 1;
  const d = document.createElement('div');
  d.className = 'node ' + n.kind;
  d.dataset.id = n.id;
  d.style.left = (10 + c * 260) + 'px';
  d.style.top = (10 + (r - 1) * 90) + 'px';
  d.innerHTML = '<div class="label"></div><div class="kind"></div>';
  d.querySelector('.label').textContent = n.label;
  d.querySelector('.kind').textContent = n.kind;
  const rules = graph.nsgs[n.id];
  if (rules) {{
    const ul = document.createElement('ul'); ul.className = 'rules';
    for (const rule of rules) {{
      const li = document.createElement('li');
      li.innerHTML = '<span class="rule"></span>: <span class="hits">0</span>';
      li.querySelector('.rule').textContent = rule;
      li.dataset.nsg = n.id; li.dataset.rule = rule;
      ul.appendChild(li);
    }}
    d.appendChild(ul);
  }}
  canvas.appendChild(d);
  boxes[n.id] = d;
}}
const height = Math.max(...Object.values(rows)) * 90 + 200;
canvas.style.height = height + 'px';
svg.setAttribute('width', 6 * 260 + 40); svg.setAttribute('height', height);
const NS = 'http://www.w3.org/2000/svg';
const links = [];
graph.edges.forEach((e, i) => {{
  const a = boxes[e.a], b = boxes[e.b];
  if (!a || !b) return;
  const ax = a.offsetLeft + a.offsetWidth / 2, ay = a.offsetTop + a.offsetHeight / 2;
  const bx = b.offsetLeft + b.offsetWidth / 2, by = b.offsetTop + b.offsetHeight / 2;
  const line = document.createElementNS(NS, 'line');
  line.setAttribute('x1', ax); line.setAttribute('y1', ay); line.setAttribute('x2', bx); line.setAttribute('y2', by);
  line.setAttribute('stroke', e.kind === 'link' ? '#555' : '#aaa');
  if (e.kind !== 'link') line.setAttribute('stroke-dasharray', '4 3');
  svg.appendChild(line);
  const t = document.createElementNS(NS, 'text');
  t.setAttribute('x', (ax + bx) / 2); t.setAttribute('y', (ay + by) / 2 - 3);
  t.textContent = e.label;
  t.setAttribute('class', 'edge'); t.dataset.edge = i;
  svg.appendChild(t);
  if (e.counter) {{
    const c = document.createElementNS(NS, 'text');
    c.setAttribute('x', (ax + bx) / 2); c.setAttribute('y', (ay + by) / 2 + 9);
    c.setAttribute('class', 'counter'); c.dataset.counter = e.counter;
    svg.appendChild(c);
    links.push(c);
  }}
}});
function show(counters) {{
  for (const c of links) {{
    const v = (counters.links || {{}})[c.dataset.counter];
    c.textContent = v ? ('rx ' + v[0] + ' pkts / tx ' + v[2] + ' pkts') : '';
  }}
  for (const li of document.querySelectorAll('li[data-nsg]')) {{
    const v = ((counters.rules || {{}})[li.dataset.nsg] || {{}})[li.dataset.rule];
    li.querySelector('.hits').textContent = v ?? 0;
  }}
}}
show(JSON.parse(document.getElementById('counters').textContent));
if (location.protocol.startsWith('http')) {{
  const poll = () => fetch('counters').then(r => r.json()).then(c => {{
    show(c);
    document.getElementById('status').textContent = 'live counters, updated ' + new Date().toLocaleTimeString();
  }}).catch(() => {{}});
  poll();
  setInterval(poll, 2000);
}}
</script>
</body></html>
"##
    )
}
