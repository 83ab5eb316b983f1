// The relationships diagram: dagre lays the tables out left to right (referencing tables to the
// left of what they reference), then plain SVG draws them; each table is a link to its page.
(function () {
  "use strict";
  const NS = "http://www.w3.org/2000/svg";
  const graph = JSON.parse(document.getElementById("graph").textContent);
  const svg = document.getElementById("diagram");
  const ROW = 16, HEAD = 22, WIDTH_PER_CHAR = 6.8, PAD = 8;

  function el(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const key in attrs) node.setAttribute(key, attrs[key]);
    if (parent) parent.appendChild(node);
    return node;
  }
  function tablePath(id) {
    return "/tables/" + encodeURIComponent(id.replace(/[\/~%?#]/g,
      (c) => "~" + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")));
  }
  function lines(node) {
    const rows = node.columns.map((c) => (c.pk ? "PK " : c.fk ? "FK " : "   ") + c.name + "  " + c.type);
    if (node.more) rows.push("   + " + node.more + " more");
    return rows;
  }

  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: "LR", nodesep: 24, ranksep: 70, edgesep: 12, marginx: 20, marginy: 20 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const node of graph.nodes) {
    const rows = lines(node);
    const longest = Math.max(node.id.length + 2, ...rows.map((r) => r.length));
    g.setNode(node.id, { data: node, rows: rows, width: longest * WIDTH_PER_CHAR + 2 * PAD, height: HEAD + rows.length * ROW + PAD });
  }
  graph.edges.forEach((edge, i) => g.setEdge(edge.from, edge.to, { label: edge.label }, "e" + i));
  dagre.layout(g);

  const world = el("g", { id: "world" }, svg);
  g.edges().forEach((e) => {
    const edge = g.edge(e);
    const group = el("g", { class: "edge", "data-from": e.v, "data-to": e.w }, world);
    const d = edge.points.map((p, i) => (i ? "L" : "M") + p.x + "," + p.y).join(" ");
    el("path", { d: d, "marker-end": "url(#arrow)" }, group);
    el("title", {}, group).textContent = e.v + " (" + edge.label + ") → " + e.w;
  });
  const defs = el("defs", {}, svg);
  const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, defs);
  el("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#8091b5" }, marker);

  g.nodes().forEach((id) => {
    const n = g.node(id);
    const x = n.x - n.width / 2, y = n.y - n.height / 2;
    const link = el("a", { href: tablePath(id), class: "node", "data-table": id }, world);
    el("rect", { x: x, y: y, width: n.width, height: n.height, rx: 4 }, link);
    el("rect", { x: x, y: y, width: n.width, height: HEAD, rx: 4, class: "head" }, link);
    el("text", { x: x + PAD, y: y + 15, class: "title" }, link).textContent = id;
    n.rows.forEach((row, i) => {
      el("text", { x: x + PAD, y: y + HEAD + 12 + i * ROW, class: row.startsWith("   +") ? "muted" : "" }, link).textContent = row;
    });
  });

  // The whole graph when it fits at a readable size; else its top left corner, text readable
  // (never below 70%), and the rest a drag or a wheel turn away.
  const size = g.graph();
  const fit = Math.min(svg.clientWidth / size.width, svg.clientHeight / size.height, 1);
  const scale = Math.max(fit, 0.7);
  svg.setAttribute("preserveAspectRatio", "xMinYMin meet");
  let view = { x: 0, y: 0, w: svg.clientWidth / scale, h: svg.clientHeight / scale };
  function apply() { svg.setAttribute("viewBox", [view.x, view.y, view.w, view.h].join(" ")); }
  apply();
  let drag = null;
  svg.addEventListener("mousedown", (ev) => { drag = { x: ev.clientX, y: ev.clientY, moved: false }; });
  window.addEventListener("mouseup", () => { setTimeout(() => { drag = null; }, 0); });
  svg.addEventListener("mousemove", (ev) => {
    if (!drag) return;
    const scale = view.w / svg.clientWidth;
    const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
    view.x -= dx * scale; view.y -= dy * scale; drag.x = ev.clientX; drag.y = ev.clientY; apply();
  });
  svg.addEventListener("click", (ev) => { if (drag && drag.moved) ev.preventDefault(); }, true);

  // Find a table by a part of its name: centre it and mark it.
  document.getElementById("find").addEventListener("keydown", (ev) => {
    if (ev.key !== "Enter") return;
    const wanted = ev.target.value.toLowerCase();
    const id = g.nodes().find((name) => name.toLowerCase().includes(wanted));
    document.querySelectorAll("#diagram a.node.found").forEach((n) => n.classList.remove("found"));
    if (!id) return;
    const n = g.node(id);
    view.x = n.x - view.w / 2; view.y = n.y - view.h / 2; apply();
    document.querySelector(`#diagram a.node[data-table="${CSS.escape(id)}"]`).classList.add("found");
  });
  svg.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const factor = ev.deltaY > 0 ? 1.15 : 1 / 1.15;
    const box = svg.getBoundingClientRect();
    const px = view.x + (ev.clientX - box.left) / box.width * view.w;
    const py = view.y + (ev.clientY - box.top) / box.height * view.h;
    view = { x: px - (px - view.x) * factor, y: py - (py - view.y) * factor, w: view.w * factor, h: view.h * factor };
    apply();
  }, { passive: false });
})();
