// The movement graph: an SVG with a deterministic layout (same answer, same picture).
// The case's entity sits in the middle; the parties it moved money with sit around it in
// time order, clockwise from the top (the first counterparty at 12 o'clock), staggered
// over up to three rings when there are many; parties reached only through them sit on
// an outer ring next to their neighbours. Movements of one kind between one pair are
// drawn as one arrow (its width grows with the amount; its title and the table below
// list every one). Keyboard: the graph is one tab stop; arrow keys walk the parties,
// Home returns to the middle, Escape clears.

const SVG = "http://www.w3.org/2000/svg";
const W = 1000;
const H = 560;
const CX = W / 2;
const CY = H / 2;
const LABELS_UP_TO = 40;
const EDGE_LABELS_UP_TO = 40;

const KINDS = {
  loan: "Loan (lender to borrower)",
  repayment: "Repayment (borrower to lender)",
  rollover: "Rollover: repaid with a new loan",
  transfer: "Transfer",
  cash_out: "Cash-out",
  other: "Payment (card, QR, wallet)",
  device: "Device used by account",
  device_payee: "Paid by an account on the device",
};

function variant(edge) {
  if (edge.kind === "repayment") return edge.funded_by ? "rollover" : "repayment";
  if (edge.kind === "payment") return edge.channel || "transfer";
  return edge.kind;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function short(amount) {
  if (amount === null || amount === undefined) return "";
  if (amount >= 1e6) return `${(amount / 1e6).toFixed(1)}M`;
  if (amount >= 1e4) return `${Math.round(amount / 1e3)}k`;
  if (amount >= 1e3) return `${(amount / 1e3).toFixed(1)}k`;
  return String(Math.round(amount));
}

function day(text) {
  return String(text).slice(0, 16).replace("T", " ");
}

export function legendEntries(graph) {
  const present = new Set(graph.edges.map(variant));
  return Object.keys(KINDS).filter((k) => present.has(k)).map((key) => ({ key, label: KINDS[key] }));
}

export function groupEdges(graph) {
  const groups = new Map();
  for (const edge of graph.edges) {
    const kind = variant(edge);
    const key = `${edge.source}\u001f${edge.target}\u001f${kind}`;
    let group = groups.get(key);
    if (!group) {
      group = { source: edge.source, target: edge.target, kind, count: 0, amount: null,
                first: edge.ts, last: edge.ts, edges: [] };
      groups.set(key, group);
    }
    group.count += 1;
    if (edge.amount !== null && edge.amount !== undefined) group.amount = (group.amount || 0) + edge.amount;
    if (edge.ts < group.first) group.first = edge.ts;
    if (edge.ts > group.last) group.last = edge.ts;
    group.edges.push(edge);
  }
  return [...groups.values()];
}

function rings(count) {
  if (count <= 16) return [[370, 210]];
  if (count <= 60) return [[260, 150], [420, 240]];
  return [[250, 150], [350, 203], [450, 255]];
}

// Positions of every node: {x, y, angle}. Pure: the same graph gives the same layout.
export function layout(graph) {
  const me = `${graph.entity_type}:${graph.entity}`;
  const first = new Map();
  const near = new Set();
  for (const edge of graph.edges) {
    for (const end of [edge.source, edge.target]) {
      if (!first.has(end) || edge.ts < first.get(end)) first.set(end, edge.ts);
    }
    if (edge.source === me) near.add(edge.target);
    if (edge.target === me) near.add(edge.source);
  }
  const byTime = (a, b) => {
    const ta = first.get(a.id) || "";
    const tb = first.get(b.id) || "";
    return ta < tb ? -1 : ta > tb ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  };
  const inner = graph.nodes.filter((n) => n.id !== me && near.has(n.id)).sort(byTime);
  const outer = graph.nodes.filter((n) => n.id !== me && !near.has(n.id)).sort(byTime);
  const at = new Map([[me, { x: CX, y: CY, angle: 0, ring: -1 }]]);
  const radii = rings(inner.length);
  inner.forEach((node, index) => {
    const angle = -Math.PI / 2 + (2 * Math.PI * index) / Math.max(inner.length, 1);
    const ring = index % radii.length;
    const [rx, ry] = radii[ring];
    at.set(node.id, { x: CX + rx * Math.cos(angle), y: CY + ry * Math.sin(angle), angle, ring });
  });
  // Outer parties: at the mean angle of their placed neighbours, then spread apart.
  const wanted = outer.map((node) => {
    let sx = 0;
    let sy = 0;
    for (const edge of graph.edges) {
      const other = edge.source === node.id ? edge.target : edge.target === node.id ? edge.source : null;
      const placed = other !== null ? at.get(other) : undefined;
      if (placed && other !== me) {
        sx += Math.cos(placed.angle);
        sy += Math.sin(placed.angle);
      }
    }
    const angle = sx || sy ? Math.atan2(sy, sx) : -Math.PI / 2;
    return { node, angle };
  }).sort((a, b) => a.angle - b.angle || (a.node.id < b.node.id ? -1 : 1));
  const gap = Math.min(0.18, (2 * Math.PI) / Math.max(wanted.length, 1));
  for (let i = 1; i < wanted.length; i += 1) {
    if (wanted[i].angle - wanted[i - 1].angle < gap) wanted[i].angle = wanted[i - 1].angle + gap;
  }
  for (const { node, angle } of wanted) {
    at.set(node.id, { x: CX + 470 * Math.cos(angle), y: CY + 262 * Math.sin(angle), angle, ring: 9 });
  }
  return at;
}

function curve(from, to, offset, shrinkEnd) {
  const dx = to.x - from.x;
  const dy = to.y - from.y;
  const length = Math.hypot(dx, dy) || 1;
  const mx = (from.x + to.x) / 2 - (dy / length) * offset;
  const my = (from.y + to.y) / 2 + (dx / length) * offset;
  // End on the target's rim, arriving from the control point.
  const ex = to.x - mx;
  const ey = to.y - my;
  const el = Math.hypot(ex, ey) || 1;
  const end = { x: to.x - (ex / el) * shrinkEnd, y: to.y - (ey / el) * shrinkEnd };
  const label = { x: 0.25 * from.x + 0.5 * mx + 0.25 * to.x, y: 0.25 * from.y + 0.5 * my + 0.25 * to.y };
  return { d: `M${from.x.toFixed(1)},${from.y.toFixed(1)} Q${mx.toFixed(1)},${my.toFixed(1)} `
             + `${end.x.toFixed(1)},${end.y.toFixed(1)}`, label };
}

function nodeText(node, groups, names) {
  const parts = [];
  for (const g of groups) {
    const other = g.source === node.id ? g.target : g.source;
    const way = g.source === node.id ? "to" : "from";
    const amount = g.amount !== null ? `, total ${short(g.amount)}` : "";
    parts.push(`${g.count} ${KINDS[g.kind] ? g.kind.replace("_", " ") : g.kind} ${way} `
               + `${names.get(other) || other}${amount}`);
  }
  const flags = [node.shared_device ? "shares a device" : "", node.hub ? "hub" : "",
                 node.relayed ? "passed on money it received" : ""].filter(Boolean);
  return `${node.entity_type} ${node.entity}${flags.length ? ` (${flags.join(", ")})` : ""}: `
         + (parts.length ? parts.join("; ") : "no movements held");
}

// Draw ``graph`` into ``wrap``; ``options.onFocus(text)`` hears the party in focus.
export function drawGraph(wrap, graph, options = {}) {
  const me = `${graph.entity_type}:${graph.entity}`;
  const at = layout(graph);
  const groups = groupEdges(graph);
  const names = new Map(graph.nodes.map((n) => [n.id, `${n.entity_type} ${n.entity}`]));
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "graph", tabindex: 0,
                            role: "group", "aria-roledescription": "graph",
                            "aria-label": `Movements of ${graph.entity_type} ${graph.entity}: `
                              + `${graph.nodes.length} parties, ${graph.edges.length} movements. `
                              + "Arrow keys move between parties." });
  const defs = svg("defs");
  for (const kind of Object.keys(KINDS)) {
    const marker = svg("marker", { id: `arrow-${kind}`, viewBox: "0 0 10 10", refX: 9, refY: 5,
                                   markerWidth: 11, markerHeight: 11, markerUnits: "userSpaceOnUse",
                                   orient: "auto-start-reverse", class: `arrow kind-${kind}` });
    marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z" }));
    defs.append(marker);
  }
  root.append(defs);

  const volume = new Map();
  for (const g of groups) {
    for (const end of [g.source, g.target]) {
      volume.set(end, (volume.get(end) || 0) + (g.amount || 0) + g.count);
    }
  }
  const biggest = Math.max(1, ...groups.map((g) => g.amount || 0));
  // Parties' circles grow with what moved through them; smaller when there are many.
  const many = graph.nodes.length > 61 ? [4, 5] : graph.nodes.length > 17 ? [5, 7] : [6, 8];
  const top = Math.max(1, ...[...volume.entries()].filter(([id]) => id !== me).map(([, v]) => v));
  const radius = (id) => (id === me ? 20
    : many[0] + many[1] * Math.sqrt(Math.min(1, (volume.get(id) || 0) / top)));

  // Edges: pairs with several groups bend apart.
  const pairs = new Map();
  for (const g of groups) {
    const key = g.source < g.target ? `${g.source}\u001f${g.target}` : `${g.target}\u001f${g.source}`;
    if (!pairs.has(key)) pairs.set(key, []);
    pairs.get(key).push(g);
  }
  const edgeLayer = svg("g", { class: "edges" });
  const labelLayer = svg("g", { class: "edge-labels" });
  const edgeNodes = new Map();
  for (const list of pairs.values()) {
    list.forEach((g, index) => {
      const from = at.get(g.source);
      const to = at.get(g.target);
      if (!from || !to) return;
      const canonical = g.source < g.target ? 1 : -1;
      const offset = list.length === 1 ? 0 : (index - (list.length - 1) / 2) * 26 * canonical;
      const path = curve(from, to, offset, radius(g.target) + 3);
      const width = g.amount !== null
        ? 1.2 + 4 * Math.log10(1 + g.amount) / Math.log10(1 + biggest)
        : 1.2 + Math.min(3, Math.log2(g.count));
      const line = svg("path", { d: path.d, class: `edge kind-${g.kind}`,
                                 "stroke-width": width.toFixed(2),
                                 "marker-end": `url(#arrow-${g.kind})`,
                                 "data-source": g.source, "data-target": g.target });
      const total = g.amount !== null ? `, total ${g.amount.toLocaleString("en-US")}` : "";
      line.append(svg("title", {}, `${g.count} × ${KINDS[g.kind] || g.kind}: `
        + `${names.get(g.source)} → ${names.get(g.target)}${total}; `
        + `${day(g.first)}${g.first !== g.last ? ` to ${day(g.last)}` : ""} UTC`));
      edgeLayer.append(line);
      for (const end of [g.source, g.target]) {
        if (!edgeNodes.has(end)) edgeNodes.set(end, []);
        edgeNodes.get(end).push(line);
      }
      if (groups.length <= EDGE_LABELS_UP_TO) {
        const text = g.amount !== null ? short(g.amount) + (g.count > 1 ? ` ×${g.count}` : "")
          : g.count > 1 ? `×${g.count}` : "";
        if (text) {
          labelLayer.append(svg("text", { x: path.label.x.toFixed(1), y: path.label.y.toFixed(1),
                                          class: `edge-label kind-${g.kind}` }, text));
        }
      }
    });
  }
  root.append(edgeLayer, labelLayer);

  // Nodes: the centre first, then in layout order.
  const order = [graph.nodes.find((n) => n.id === me), ...graph.nodes.filter((n) => n.id !== me)
    .sort((a, b) => {
      const pa = at.get(a.id);
      const pb = at.get(b.id);
      return (pa.ring === 9) - (pb.ring === 9) || pa.angle - pb.angle || (a.id < b.id ? -1 : 1);
    })].filter(Boolean);
  const ranked = [...volume.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([id]) => id);
  const labelled = new Set(order.length <= LABELS_UP_TO ? order.map((n) => n.id) : [me, ...ranked]);
  const nodeLayer = svg("g", { class: "nodes" });
  const items = [];
  order.forEach((node, index) => {
    const p = at.get(node.id);
    const touching = groups.filter((g) => g.source === node.id || g.target === node.id);
    const classes = ["node", `type-${node.entity_type}`, node.id === me ? "me" : "",
                     node.shared_device ? "shared-device" : "", node.hub ? "hub" : "",
                     node.relayed ? "relayed" : ""].filter(Boolean).join(" ");
    const group = svg("g", { class: classes, id: `gnode-${index}`, "data-id": node.id,
                             transform: `translate(${p.x.toFixed(1)},${p.y.toFixed(1)})` });
    group.append(svg("circle", { r: radius(node.id).toFixed(1) }));
    group.append(svg("title", {}, nodeText(node, touching, names)));
    const right = Math.cos(p.angle) >= 0 || node.id === me;
    const label = svg("text", {
      x: node.id === me ? 0 : (right ? 1 : -1) * (radius(node.id) + 4),
      y: node.id === me ? radius(node.id) + 16 : 4,
      "text-anchor": node.id === me ? "middle" : right ? "start" : "end",
      class: labelled.has(node.id) ? "label" : "label quiet" },
      node.entity.length > 22 ? `${node.entity.slice(0, 21)}…` : node.entity);
    group.append(label);
    group.addEventListener("click", () => select(index));
    nodeLayer.append(group);
    items.push({ node, group, text: nodeText(node, touching, names) });
  });
  root.append(nodeLayer);

  let selected = -1;
  function select(index) {
    for (const item of items) item.group.classList.remove("focused");
    for (const line of edgeLayer.children) line.classList.remove("lit");
    selected = index;
    if (index < 0) {
      root.classList.remove("has-focus");
      root.removeAttribute("aria-activedescendant");
      if (options.onFocus) options.onFocus("");
      return;
    }
    const item = items[index];
    root.classList.add("has-focus");
    item.group.classList.add("focused");
    root.setAttribute("aria-activedescendant", item.group.id);
    for (const line of edgeNodes.get(item.node.id) || []) line.classList.add("lit");
    if (options.onFocus) options.onFocus(item.text);
  }
  root.addEventListener("keydown", (event) => {
    const last = items.length - 1;
    let next = null;
    if (event.key === "ArrowRight" || event.key === "ArrowDown") next = selected >= last ? 0 : selected + 1;
    else if (event.key === "ArrowLeft" || event.key === "ArrowUp") next = selected <= 0 ? last : selected - 1;
    else if (event.key === "Home") next = 0;
    else if (event.key === "End") next = last;
    else if (event.key === "Escape") next = -1;
    if (next !== null) {
      event.preventDefault();
      select(next);
    }
  });
  root.addEventListener("focus", () => { if (selected < 0 && items.length) select(0); });
  wrap.append(root);
  return { select, items };
}
