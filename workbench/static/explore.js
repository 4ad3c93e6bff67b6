/* Explore: search a node, draw its neighbourhood with cytoscape, expand on click, filter by
   relation type and hop limit, show properties and each edge's run and source; run a named query. */
"use strict";

(() => {
  const { get, post, el, fmt, say, table, options } = WB;
  const $ = (id) => document.getElementById(id);
  const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
  const colours = {};
  const colour = (label) => colours[label] || (colours[label] = PALETTE[Object.keys(colours).length % PALETTE.length]);
  let relations = [];
  let root = null; // the hit the drawing started from: a new hop limit redraws from it

  const cy = cytoscape({
    container: $("graph"),
    style: [
      { selector: "node", style: { label: "data(caption)", "background-color": "data(colour)", "font-size": 10,
        "text-valign": "bottom", "text-margin-y": 3, width: 22, height: 22, "text-wrap": "ellipsis", "text-max-width": 110 } },
      { selector: "node.root", style: { "border-width": 3, "border-color": "#222" } },
      { selector: "node:selected", style: { "border-width": 3, "border-color": "#d62728" } },
      { selector: "edge", style: { width: 1.5, "line-color": "#aaa", "target-arrow-color": "#aaa", "target-arrow-shape": "triangle",
        "curve-style": "bezier", label: "data(type)", "font-size": 8, color: "#555", "text-rotation": "autorotate" } },
      { selector: "edge.hidden-type", style: { display: "none" } },
      { selector: "edge:selected", style: { "line-color": "#d62728", "target-arrow-color": "#d62728" } },
    ],
    wheelSensitivity: 0.3,
  });
  window.WB_CY = cy; // for the browser tests and the console

  function checkedRelations() {
    return Array.from(document.querySelectorAll("#relations input:checked")).map((i) => i.value);
  }

  function applyFilter() {
    const keep = new Set(checkedRelations());
    cy.edges().forEach((e) => e.toggleClass("hidden-type", !keep.has(e.data("type"))));
    count();
  }

  function count(truncated) {
    const shown = cy.edges().filter((e) => !e.hasClass("hidden-type")).length;
    $("graph-count").textContent = cy.nodes().length + " nodes, " + shown + " edges" + (truncated ? " (truncated)" : "");
    $("graph-count").dataset.nodes = cy.nodes().length;
    const labels = [...new Set(cy.nodes().map((n) => n.data("label")))].sort();
    $("legend").replaceChildren(...labels.map((l) => el("span", { class: "tag", style: "background:" + colour(l) }, l)));
  }

  async function neighbourhood(label, id, fresh) {
    const rels = checkedRelations();
    const query = { label, id, hops: $("hops").value, limit: 200 };
    if (rels.length && rels.length < relations.length) query.rel = rels;
    const data = await get("/api/neighbourhood", query);
    if (fresh) cy.elements().remove();
    const centre = cy.getElementById(label + ":" + id);
    const at = centre.length ? centre.position() : { x: 0, y: 0 };
    const added = [];
    data.nodes.forEach((n, i) => {
      if (cy.getElementById(n.key).length) return;
      const angle = (2 * Math.PI * i) / Math.max(1, data.nodes.length);
      added.push({ group: "nodes", data: { id: n.key, label: n.label, nid: n.id, name: n.name,
        caption: n.name || n.id, colour: colour(n.label) }, position: { x: at.x + 120 * Math.cos(angle), y: at.y + 120 * Math.sin(angle) } });
    });
    data.edges.forEach((e) => {
      const key = e.source + "|" + e.type + "|" + e.target;
      if (cy.getElementById(key).length) return;
      added.push({ group: "edges", data: Object.assign({ id: key }, e) });
    });
    cy.add(added);
    cy.getElementById(label + ":" + id).addClass("root");
    cy.layout({ name: "cose", animate: false, randomize: false, fit: true, padding: 30, nodeRepulsion: () => 8000 }).run();
    applyFilter();
    count(data.truncated);
    return data;
  }

  async function showNode(label, id) {
    const node = await get("/api/node/" + encodeURIComponent(label) + "/" + encodeURIComponent(id));
    const props = Object.entries(node.properties || {});
    const key = label + ":" + id;
    const edges = cy.getElementById(key).connectedEdges().map((e) => e.data());
    $("details").replaceChildren(
      el("h2", {}, label, " ", el("code", {}, id)),
      el("h3", {}, "Properties"),
      table(["property", "value"], props),
      el("h3", {}, "Edges in view"),
      edges.length ? el("ul", { class: "edges" }, ...edges.map((e) => el("li", {},
        el("div", {}, e.source === key ? "→ " : "← ", el("b", {}, e.type), " ", e.source === key ? e.target : e.source),
        el("div", { class: "muted" }, "run " + fmt(e.run_id) + " · source " + fmt(e.source_name)
          + (e.confidence === null || e.confidence === undefined ? "" : " · confidence " + fmt(e.confidence))))))
        : el("p", { class: "muted" }, "none"));
  }

  function showEdge(e) {
    $("details").replaceChildren(
      el("h2", {}, e.type),
      table(["field", "value"], [["from", e.source], ["to", e.target], ["run", e.run_id], ["source", e.source_name], ["confidence", e.confidence]]));
  }

  async function guard(work) {
    try { say(""); return await work(); } catch (err) { say(err.message, "error"); return null; }
  }

  cy.on("tap", "node", (ev) => guard(async () => {
    const n = ev.target.data();
    await neighbourhood(n.label, n.nid, false);
    await showNode(n.label, n.nid);
  }));
  cy.on("tap", "edge", (ev) => showEdge(ev.target.data()));

  $("search-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    guard(async () => {
      const data = await get("/api/search", { q: $("q").value, label: $("search-label").value, limit: 20 });
      $("hits").replaceChildren(...(data.hits.length ? data.hits.map((h) =>
        el("li", {}, el("button", { type: "button", class: "hit", "data-key": h.label + ":" + h.id, onclick: () => guard(async () => {
          root = h;
          await neighbourhood(h.label, h.id, true);
          await showNode(h.label, h.id);
        }) }, el("span", { class: "tag", style: "background:" + colour(h.label) }, h.label), " ", h.name || h.id,
        h.name ? el("span", { class: "muted" }, " " + h.id) : ""))) : [el("li", { class: "muted" }, "no match")]));
    });
  });
  $("graph-clear").addEventListener("click", () => { root = null; cy.elements().remove(); count(); });
  $("hops").addEventListener("change", () => root && guard(() => neighbourhood(root.label, root.id, true)));
  $("relations").addEventListener("change", applyFilter);

  /* ---- named queries ---- */
  let queries = [];
  function queryValues() {
    const values = {};
    document.querySelectorAll("#query-form [data-param]").forEach((input) => {
      const v = input.type === "checkbox" ? String(input.checked) : input.value.trim();
      if (v !== "") values[input.dataset.param] = v;
    });
    return values;
  }
  function downloads(name) {
    const base = "/api/queries/" + encodeURIComponent(name) + "/download";
    for (const format of ["csv", "parquet"]) {
      const a = $("download-" + format);
      a.href = base + WB.qs(Object.assign({ format }, queryValues()));
      a.dataset.filename = name + "." + format;
    }
  }
  function buildForm() {
    const q = queries.find((x) => x.name === $("query-name").value);
    if (!q) return;
    $("query-description").textContent = q.description;
    const fields = q.params.map((p) => {
      const input = el("input", { "data-param": p.name, name: p.name, required: p.required,
        type: p.type === "bool" ? "checkbox" : ["int", "float", "hops"].includes(p.type) ? "number" : "text",
        step: p.type === "float" ? "any" : undefined, placeholder: p.type + (p.type === "list" ? " (a,b,c)" : "") });
      if (p.default !== null && p.default !== undefined) {
        if (p.type === "bool") input.checked = p.default === true || String(p.default) === "true";
        else input.value = Array.isArray(p.default) ? p.default.join(",") : p.default;
      }
      return el("label", { class: "param" }, p.name + (p.required ? " *" : ""), input);
    });
    $("query-form").replaceChildren(...fields, el("button", { type: "submit" }, "Run"));
    $("query-downloads").hidden = true;
  }
  $("query-name").addEventListener("change", buildForm);
  $("query-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    guard(async () => {
      const name = $("query-name").value;
      const data = await post("/api/queries/" + encodeURIComponent(name), { params: queryValues() });
      $("query-result").replaceChildren(el("h3", {}, name + " · " + data.rows.length + " rows"), table(data.columns, data.rows));
      downloads(name);
      $("query-downloads").hidden = false;
    });
  });
  WB.download($("download-csv"));
  WB.download($("download-parquet"));

  guard(async () => {
    const labels = await get("/api/labels");
    relations = labels.relations;
    options($("search-label"), labels.labels, 1);
    $("relations").replaceChildren(el("legend", {}, "Relation types"), ...relations.map((r) =>
      el("label", { class: "check" }, el("input", { type: "checkbox", value: r, checked: true }), r)));
    queries = (await get("/api/queries")).queries.filter((q) => !q.writes);
    options($("query-name"), queries.map((q) => q.name));
    buildForm();
  });
})();
