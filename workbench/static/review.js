/* Review mined facts: a queue with filters, each item's provenance, and accept / reject / skip by
   button or key (a, r, s; j / k move). Decisions become the feedback `mokg feedback import` reads. */
"use strict";

(() => {
  const { get, post, el, fmt, say, table, options } = WB;
  const $ = (id) => document.getElementById(id);
  let items = [];
  let at = 0;
  let offset = 0;
  const PAGE = 50;

  const name = (n) => (n.name || n.id) + (n.name && n.name !== n.id ? " (" + n.id + ")" : "");

  function renderQueue() {
    $("queue").replaceChildren(...items.map((it, i) => el("li", {
      class: "item" + (i === at ? " selected" : "") + (it.decision ? " decided " + it.decision : ""),
      "data-key": it.key, onclick: () => { at = i; render(); },
    }, el("span", { class: "triple" }, name(it.head), " ", el("b", {}, it.relation), " ", name(it.tail)),
       el("span", { class: "conf" }, fmt(it.confidence)),
       it.decision ? el("span", { class: "badge " + it.decision }, it.decision) : "")));
  }

  function provenance(it) {
    const rows = [["confidence", it.confidence], ["vote", it.vote], ["relatedness", it.relatedness], ["run", it.run_id]];
    const ev = it.evidence || {};
    for (const [k, v] of Object.entries(ev)) rows.push([k, v]);
    return table(["field", "value"], rows, (c, v) => {
      if (c !== "value" || typeof v !== "object" || v === null) return undefined;
      if (Array.isArray(v) && v.every((x) => typeof x !== "object")) return v.join(", ");
      return el("pre", {}, JSON.stringify(v, null, 1));
    });
  }

  /* Where a fact mined from documents was stated: the passage with the stated part marked. */
  function passages(it) {
    if (!it.spans || !it.spans.length) return el("p", { class: "muted" }, "Not mined from a document (no spans).");
    return el("ol", { class: "passages" }, ...it.spans.map((s) => {
      const text = s.passage || "";
      const body = text ? [text.slice(Math.max(0, s.start - 200), s.start), el("mark", {}, text.slice(s.start, s.end)), text.slice(s.end, s.end + 200)]
        : [el("span", { class: "muted" }, "(chunk text not in the store)")];
      return el("li", {}, el("div", { class: "muted" }, (s.title || s.document || "document") + " · chunk " + s.chunk + " [" + s.start + ", " + s.end + ")"),
        el("blockquote", {}, ...body));
    }));
  }

  function renderCurrent() {
    const it = items[at];
    if (!it) { $("current").replaceChildren(el("p", { class: "muted" }, "The queue is empty for these filters.")); return; }
    $("current").replaceChildren(
      el("h2", { class: "triple" }, name(it.head), " ", el("span", { class: "rel" }, it.relation), " ", name(it.tail)),
      el("p", { class: "muted" }, it.head.label + " → " + it.tail.label + (it.decision ? " · decided: " + it.decision : "")
        + (it.retired_run ? " · retired by run " + it.retired_run : "")),
      el("div", { class: "row actions" },
        el("button", { id: "accept", type: "button", class: "accept", onclick: () => decide("accept") }, "Accept (a)"),
        el("button", { id: "reject", type: "button", class: "reject", onclick: () => decide("reject") }, "Reject (r)"),
        el("label", { class: "check" }, el("input", { id: "retire", type: "checkbox" }), "retire from graph"),
        el("button", { id: "skip", type: "button", onclick: () => decide("skip") }, "Skip (s)")),
      el("h3", {}, "Provenance"), provenance(it),
      el("h3", {}, "From documents"), passages(it));
  }

  function render() { renderQueue(); renderCurrent(); }

  async function decide(decision) {
    const it = items[at];
    if (!it) return;
    const retire = decision === "reject" && $("retire").checked;
    try {
      const out = await post("/api/review/decision", { key: it.key, decision, retire });
      if (decision !== "skip") it.decision = decision;
      if (out.retired_run) it.retired_run = out.retired_run;
      say(decision + ": " + name(it.head) + " " + it.relation + " " + name(it.tail)
        + (out.feedback_file && decision !== "skip" ? " → " + out.feedback_file : "")
        + (out.retired_run ? " · retired in run " + out.retired_run + " (undo: mokg runs delete " + out.retired_run + ")" : ""), "info");
      const next = items.findIndex((x, i) => i > at && !x.decision);
      at = next >= 0 ? next : Math.min(at + 1, items.length - 1);
      render();
    } catch (err) { say(err.message, "error"); }
  }

  async function load() {
    try {
      const f = { relation: $("f-relation").value, min_conf: $("f-min").value, max_conf: $("f-max").value, run: $("f-run").value, offset, limit: PAGE };
      const data = await get("/api/review", f);
      items = data.items;
      at = Math.max(0, items.findIndex((x) => !x.decision));
      $("review-total").textContent = data.total + " mined triples match; showing " + (items.length ? (offset + 1) + "–" + (offset + items.length) : "none");
      $("page-prev").disabled = offset === 0;
      $("page-next").disabled = offset + items.length >= data.total;
      render();
    } catch (err) { say(err.message, "error"); }
  }

  document.addEventListener("keydown", (ev) => {
    if (ev.target.closest && ev.target.closest("input, select, textarea") && ev.target.type !== "checkbox") return;
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const act = { a: "accept", r: "reject", s: "skip" }[ev.key];
    if (act) { ev.preventDefault(); decide(act); }
    else if (ev.key === "j" || ev.key === "k") { at = Math.max(0, Math.min(items.length - 1, at + (ev.key === "j" ? 1 : -1))); render(); }
  });
  $("review-filters").addEventListener("submit", (ev) => { ev.preventDefault(); offset = 0; load(); });
  $("page-prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load(); });
  $("page-next").addEventListener("click", () => { offset += PAGE; load(); });

  (async () => {
    try {
      const [labels, runs] = await Promise.all([get("/api/labels"), get("/api/runs")]);
      options($("f-relation"), labels.relations, 1);
      options($("f-run"), runs.runs.map((r) => ({ value: r.run_id, text: r.run_id + " (" + r.kind + ")" })), 1);
    } catch (err) { say(err.message, "error"); }
    load();
  })();
})();
