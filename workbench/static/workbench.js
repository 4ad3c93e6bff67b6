/* mokg workbench: what every page shares. The bearer token is read from ?token= and kept in
   sessionStorage; every API call sends it as "Authorization: Bearer"; links between pages carry it
   (a page shell is admitted with the token in its URL). */
"use strict";

const WB = (() => {
  const KEY = "mokg-workbench-token";
  const params = new URLSearchParams(location.search);
  /* The token stays in the address bar: the server admits a page shell only with it there, so a
     reload must still carry it. */
  if (params.has("token")) sessionStorage.setItem(KEY, params.get("token"));
  const token = () => sessionStorage.getItem(KEY);

  function headers(extra) {
    const h = Object.assign({ Accept: "application/json" }, extra || {});
    if (token()) h.Authorization = "Bearer " + token();
    return h;
  }

  /* Call the JSON API; resolves to the parsed body, rejects with Error(<the API's one line>). */
  async function api(method, path, body) {
    const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
    if (body !== undefined) init.body = JSON.stringify(body);
    const response = await fetch(path, init);
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (!response.ok) {
      const line = data && data.error ? data.error : (data && data.detail ? JSON.stringify(data.detail) : text);
      throw new Error(line || response.status + " " + response.statusText);
    }
    return data;
  }

  const get = (path, query) => api("GET", path + qs(query));
  const post = (path, body) => api("POST", path, body);

  function qs(query) {
    if (!query) return "";
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined || v === null || v === "") continue;
      (Array.isArray(v) ? v : [v]).forEach((x) => p.append(k, x));
    }
    const s = p.toString();
    return s ? "?" + s : "";
  }

  /* A file from the API: a plain link without a token, else fetched with the header and saved. */
  function download(anchor) {
    anchor.addEventListener("click", async (ev) => {
      if (!token()) return;
      ev.preventDefault();
      try {
        const response = await fetch(anchor.href, { headers: headers() });
        if (!response.ok) throw new Error((await response.json()).error || response.statusText);
        const url = URL.createObjectURL(await response.blob());
        const a = el("a", { href: url, download: anchor.dataset.filename || "download" });
        document.body.append(a); a.click(); a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 1000);
      } catch (err) { say(err.message, "error"); }
    });
  }

  function say(text, kind) {
    const box = document.getElementById("message");
    if (!text) { box.hidden = true; return; }
    box.textContent = text;
    box.className = "message " + (kind || "info");
    box.hidden = false;
  }

  /* el("td", {class: "x"}, "text", child, ...) */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "class") node.className = v;
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c !== undefined && c !== null) node.append(c instanceof Node ? c : String(c));
    return node;
  }

  function fmt(v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "number" && !Number.isInteger(v)) {
      const a = Math.abs(v);
      return a >= 0.01 ? v.toFixed(3) : a >= 0.001 ? v.toPrecision(3) : v.toExponential(2);
    }
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }

  /* A table of columns × rows (rows: arrays, or objects keyed by column). */
  function table(columns, rows, cell) {
    const head = el("tr", {}, ...columns.map((c) => el("th", {}, c)));
    const body = rows.map((r, i) => el("tr", {},
      ...columns.map((c, j) => {
        const v = Array.isArray(r) ? r[j] : r[c];
        const custom = cell ? cell(c, v, r, i) : undefined;
        return el("td", { class: typeof v === "number" ? "num" : undefined }, custom !== undefined ? custom : fmt(v));
      })));
    return el("table", { class: "data" }, el("thead", {}, head), el("tbody", {}, ...body));
  }

  function options(select, values, keep) {
    const first = keep ? Array.from(select.options).slice(0, keep) : [];
    select.replaceChildren(...first, ...values.map((v) =>
      typeof v === "object" ? el("option", { value: v.value }, v.text) : el("option", { value: v }, v)));
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (!token()) return;
    document.querySelectorAll("a[data-nav]").forEach((a) => {
      a.href = a.getAttribute("href").split("?")[0] + "?token=" + encodeURIComponent(token());
    });
  });

  return { api, get, post, qs, download, say, el, fmt, table, options, token };
})();
