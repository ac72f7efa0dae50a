// The console's graph island: draws the server's layout of a profile's
// identity graph with sigma.js (WebGL), loaded only on the graph page.
// The page's table twin holds the same nodes and edges for keyboards and
// screen readers; clicking an edge opens its explanation.
import Graph from "graphology";
import Sigma from "sigma";

const data = JSON.parse(document.getElementById("graph-data").textContent);
const container = document.getElementById("graph-canvas");
const g = new Graph({ type: "undirected", multi: false });
for (const n of data.nodes) {
  g.addNode(n.id, { x: n.x, y: n.y, size: n.size, label: n.label, color: n.color });
}
for (const e of data.edges) {
  if (g.hasNode(e.a) && g.hasNode(e.b) && !g.hasEdge(e.a, e.b)) {
    g.addEdgeWithKey(e.id, e.a, e.b, { size: e.size, color: e.color, score: e.score, href: e.href, label: e.label });
  }
}
let threshold = 0;
// The edge the keyboard is on (see below), drawn thicker.
const order = g.edges();
let current = -1;
const renderer = new Sigma(g, container, {
  enableEdgeEvents: true,
  renderEdgeLabels: false,
  labelRenderedSizeThreshold: 8,
  edgeReducer: (edge, attrs) => {
    if (attrs.score < threshold) return { ...attrs, hidden: true };
    if (current >= 0 && order[current] === edge) return { ...attrs, size: (attrs.size || 1) * 3, zIndex: 1 };
    return attrs;
  },
});
renderer.on("clickEdge", ({ edge }) => {
  const href = g.getEdgeAttribute(edge, "href");
  if (href) window.location.assign(href);
});
renderer.on("enterEdge", () => container.classList.add("pointer"));
renderer.on("leaveEdge", () => container.classList.remove("pointer"));
const slider = document.getElementById("weight");
const shown = document.getElementById("weight-value");
if (slider) {
  slider.addEventListener("input", () => {
    threshold = Number(slider.value);
    if (shown) shown.textContent = threshold.toFixed(2);
    renderer.refresh();
  });
}
// Keyboard: the drawing is focusable; arrow keys step through the edges
// (the current one is drawn thicker and announced), Enter opens its
// explanation. The table below offers the same edges as links.
const live = document.getElementById("graph-live");
container.tabIndex = 0;
container.addEventListener("keydown", (e) => {
  if (order.length === 0) return;
  if (e.key === "ArrowRight" || e.key === "ArrowDown") current = (current + 1) % order.length;
  else if (e.key === "ArrowLeft" || e.key === "ArrowUp") current = (current - 1 + order.length) % order.length;
  else if (e.key === "Enter" && current >= 0) {
    const href = g.getEdgeAttribute(order[current], "href");
    if (href) window.location.assign(href);
    return;
  } else return;
  e.preventDefault();
  const [a, b] = g.extremities(order[current]);
  if (live) live.textContent = `${a} to ${b}: ${g.getEdgeAttribute(order[current], "label")}. Enter opens its explanation.`;
  renderer.refresh();
});
container.dataset.ready = "true";
