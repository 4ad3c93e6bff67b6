/* Runs: the store's runs with their counts, status and graph version; roll one back after typing
   its id (DELETE /api/runs/{id}?confirm={id}). */
"use strict";

(() => {
  const { get, api, el, say, table } = WB;
  const $ = (id) => document.getElementById(id);
  const FIRST = ["run_id", "kind", "status", "note", "started_at", "finished_at", "graph_version", "nodes", "edges", "created"];

  /* {"node": {"User": 300}, "edge": {"NEEDS": 9}} → "User 300 · NEEDS 9" */
  function created(v) {
    if (!v || typeof v !== "object") return "";
    const parts = [];
    for (const kind of ["node", "edge"]) for (const [k, n] of Object.entries(v[kind] || {})) parts.push(k + " " + n);
    return el("span", { class: "counts" }, parts.join(" · "));
  }

  async function load() {
    try {
      const runs = (await get("/api/runs")).runs;
      const extra = [...new Set(runs.flatMap((r) => Object.keys(r)))].filter((k) => !FIRST.includes(k));
      const columns = [...FIRST.filter((k) => runs.some((r) => k in r)), ...extra, ""];
      $("runs").replaceChildren(runs.length ? table(columns, runs, (c, v, r) => (c === ""
        ? el("button", { type: "button", class: "danger", "data-run": r.run_id, onclick: () => ask(r.run_id) }, "Roll back…")
        : c === "created" ? created(v) : undefined)) : el("p", { class: "muted" }, "This store has no runs yet."));
    } catch (err) { say(err.message, "error"); }
  }

  function ask(runId) {
    $("delete-id").textContent = runId;
    $("delete-confirm").value = "";
    $("confirm-delete").dataset.run = runId;
    $("confirm-delete").showModal();
    $("delete-confirm").focus();
  }

  $("delete-cancel").addEventListener("click", () => $("confirm-delete").close());
  $("delete-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const runId = $("confirm-delete").dataset.run;
    const typed = $("delete-confirm").value.trim();
    $("confirm-delete").close();
    try {
      const out = await api("DELETE", "/api/runs/" + encodeURIComponent(runId) + WB.qs({ confirm: typed }));
      $("delete-result").className = "result ok";
      $("delete-result").replaceChildren(el("p", {}, "Run " + runId + " rolled back."), el("pre", {}, JSON.stringify(out, null, 2)));
      load();
    } catch (err) {
      $("delete-result").className = "result refused";
      $("delete-result").replaceChildren(el("p", {}, "Refused: " + err.message));
    }
  });

  load();
})();
