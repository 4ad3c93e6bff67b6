/* Audiences: pick a campaign and a method, preview the size curve and a sample with the targeter's
   explanations, compare methods' overlap, and export with the CLI's guards (refusals shown as is). */
"use strict";

(() => {
  const { get, post, el, fmt, say, table, options } = WB;
  const $ = (id) => document.getElementById(id);
  const METHODS = ["rule", "ppr", "gnn", "lookalike", "density"];
  const SVG = "http://www.w3.org/2000/svg";

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    return node;
  }

  /* Score by audience size (rank), a polyline in an inline SVG with its two axes labelled. */
  function curve(sizes, scores, cut) {
    const W = 460, H = 210, L = 52, B = 28, T = 22, R = 12;
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": "audience size curve" });
    if (!sizes.length) { $("curve").replaceChildren(el("p", { class: "muted" }, "nobody is reached")); return; }
    const log = $("log-scale").checked;
    const positive = scores.filter((v) => v > 0);
    const floor = positive.length ? Math.min(...positive) : 1e-9;
    const f = (v) => (log ? Math.log10(Math.max(v, floor)) : v);
    const xMax = Math.max(...sizes), yMax = Math.max(...scores.map(f)), yMin = log ? f(floor) : Math.min(0, ...scores);
    const x = (v) => L + ((W - L - R) * v) / xMax;
    const y = (v) => H - B - ((H - B - T) * (f(v) - yMin)) / (yMax - yMin || 1);
    root.append(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }));
    root.append(svg("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }));
    const points = sizes.map((s, i) => x(s).toFixed(1) + "," + y(scores[i]).toFixed(1)).join(" ");
    root.append(svg("polyline", { points, class: "curve-line", fill: "none" }));
    const text = (t, a) => { const n = svg("text", a); n.textContent = t; root.append(n); };
    if (cut > 0 && cut <= xMax) {
      root.append(svg("line", { x1: x(cut), y1: T, x2: x(cut), y2: H - B, class: "cut" }));
      text("size " + cut, { x: x(cut) + 3, y: T + 10, class: "tick" });
    }
    text("size", { x: W - R, y: H - 6, "text-anchor": "end", class: "tick" });
    text(String(xMax), { x: W - R, y: H - B + 12, "text-anchor": "end", class: "tick" });
    const top = Math.max(...scores), bottom = log ? floor : Math.min(0, ...scores);
    text(fmt(top), { x: L - 4, y: T + 8, "text-anchor": "end", class: "tick" });
    text(fmt(bottom), { x: L - 4, y: H - B, "text-anchor": "end", class: "tick" });
    text(log ? "score (log)" : "score", { x: 4, y: 12, class: "tick" });
    $("curve").replaceChildren(root);
  }

  let last = null;
  $("log-scale").addEventListener("change", () => { if (last) curve(last.sizes, last.scores, Number($("size").value)); });

  const chosen = () => ({ campaign: $("campaign").value, method: $("method").value });

  $("audience-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    say("");
    try {
      const data = await post("/api/audiences/preview", Object.assign(chosen(), { size: Number($("size").value) }));
      last = data;
      curve(data.sizes, data.scores, Number($("size").value));
      $("reached").textContent = data.reached + " users reached by " + chosen().method + "; the sample is spread over the top " + $("size").value + ".";
      $("sample").replaceChildren(table(["user", "score", "why"], data.sample, (c, v) =>
        c === "why" ? el("ul", { class: "why" }, ...(v || []).map((w) => el("li", {}, fmt(w)))) : undefined));
      $("export-size").value = $("size").value;
    } catch (err) { say(err.message, "error"); }
  });

  $("overlap-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    say("");
    const methods = Array.from(document.querySelectorAll("#overlap-methods input:checked")).map((i) => i.value);
    try {
      const data = await post("/api/audiences/overlap", { campaign: $("campaign").value, methods, size: Number($("size").value) });
      $("overlap").replaceChildren(table(["", ...data.methods], data.matrix.map((row, i) => [data.methods[i], ...row])));
    } catch (err) { say(err.message, "error"); }
  });

  $("export-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    say("");
    const body = Object.assign(chosen(), { size: Number($("export-size").value) });
    if ($("export-salt").value) body.salt = $("export-salt").value;
    const out = $("export-result");
    try {
      const manifest = await post("/api/audiences/export", body);
      out.className = "result ok";
      out.replaceChildren(el("p", {}, "Exported."), el("pre", { id: "export-manifest" }, JSON.stringify(manifest, null, 2)));
    } catch (err) {
      out.className = "result refused";
      out.replaceChildren(el("p", { id: "export-refusal" }, "Refused: " + err.message));
    }
  });

  $("overlap-methods").replaceChildren(...METHODS.map((m) =>
    el("label", { class: "check" }, el("input", { type: "checkbox", value: m, checked: m === "rule" || m === "ppr" }), m)));

  (async () => {
    try {
      const data = await get("/api/campaigns");
      options($("campaign"), data.campaigns.map((c) => ({ value: c.id, text: (c.name || c.id) + (c.budget ? " · budget " + c.budget : "") })));
    } catch (err) { say(err.message, "error"); }
  })();
})();
