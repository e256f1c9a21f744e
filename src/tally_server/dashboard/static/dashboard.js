// The Tally dashboard: one more client of the public API.
//
// Everything shown here is read through the contract's GET operations under /v1, authenticated by the session
// cookie (the DashboardSession scheme). User-supplied text only ever reaches the page through textContent and
// attribute setters (never innerHTML), so names, tags and metadata cannot inject markup. Plain JavaScript with
// no build step; charts by uPlot (vendored, MIT).
"use strict";

(function () {
  const STATUSES = ["running", "completed", "failed", "cancelled"];
  const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];
  const REFRESH_MS = 5000;
  const app = document.getElementById("app");

  // ---- DOM and API ---------------------------------------------------------------------------------------
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "class") node.className = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  class ApiError extends Error {}

  async function api(path, params) {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(params || {})) {
      if (value !== undefined && value !== null && value !== "") query.set(key, String(value));
    }
    const url = "/v1" + path + (query.toString() ? "?" + query : "");
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (response.status === 401) {
      window.location.assign("/login");
      throw new ApiError("Your session has ended; log in again.");
    }
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      const error = body && body.error;
      throw new ApiError(error ? `${error.message} (${error.code}, request ${error.request_id})` : response.statusText);
    }
    return body;
  }

  const enc = encodeURIComponent;
  const folderNames = new Map();

  function folderName(id) {
    if (!id) return Promise.resolve("");
    if (!folderNames.has(id)) {
      folderNames.set(id, api(`/folders/${enc(id)}`).then((f) => f.name, () => id));
    }
    return folderNames.get(id);
  }

  function showError(where, error) {
    where.replaceChildren(el("p", { class: "error", role: "alert" }, String(error.message || error)));
  }

  function formatValue(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "number") return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(5)));
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  function formatTime(text) {
    if (!text) return "";
    const date = new Date(text);
    return isNaN(date) ? text : date.toISOString().slice(0, 16).replace("T", " ");
  }

  function flatten(object, prefix, out) {
    for (const [key, value] of Object.entries(object || {})) {
      const path = prefix ? `${prefix}.${key}` : key;
      if (value && typeof value === "object" && !Array.isArray(value)) flatten(value, path, out);
      else out[path] = value;
    }
    return out;
  }

  function statusBadge(status) {
    return el("span", { class: `status status-${STATUSES.includes(status) ? status : "other"}` }, status);
  }

  // ---- summaries ------------------------------------------------------------------------------------------
  // A summary column is "<metric>:<last|min|max>", the same aggregates listExperiments can order by.
  function parseColumn(text) {
    const at = text.lastIndexOf(":");
    const agg = at > 0 ? text.slice(at + 1) : "";
    if (!["last", "min", "max"].includes(agg)) return { name: text, agg: "last" };
    return { name: text.slice(0, at), agg };
  }

  // One metric name over all its metadata sets, as listExperiments' order_by reads it.
  function summarise(metrics, name) {
    const rows = metrics.filter((m) => m.name === name);
    if (!rows.length) return null;
    const last = rows.reduce((a, b) => ((b.last_step ?? -1) > (a.last_step ?? -1) ? b : a));
    return {
      last: last.last,
      min: Math.min(...rows.map((r) => r.min)),
      max: Math.max(...rows.map((r) => r.max)),
    };
  }

  async function mapLimited(items, limit, fn) {
    const out = new Array(items.length);
    let next = 0;
    async function worker() {
      while (next < items.length) {
        const index = next++;
        out[index] = await fn(items[index]).catch(() => null);
      }
    }
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
    return out;
  }

  // ---- the runs table ---------------------------------------------------------------------------------------
  function metadataLiteral(text) {
    // listExperiments takes a JSON literal: `0.0003` matches the number, `"adam"` the string. Text that is no
    // JSON is meant as a string.
    try {
      JSON.parse(text);
      return text;
    } catch (_) {
      return JSON.stringify(text);
    }
  }

  async function runsPage() {
    const state = new URLSearchParams(window.location.search);
    const summaryColumns = (state.get("cols") || "").split(",").map((s) => s.trim()).filter(Boolean).map(parseColumn);
    const metaColumns = (state.get("meta") || "").split(",").map((s) => s.trim()).filter(Boolean);
    const order = state.get("order") || "-created_at";
    const filter = state.get("where") || "";

    const field = (name, label, attrs) =>
      el("label", {}, label, el("input", { name, value: state.get(name) || "", ...attrs }));
    const statusSelect = el(
      "select",
      { name: "status" },
      el("option", { value: "" }, "any"),
      STATUSES.map((s) => el("option", { value: s, selected: state.get("status") === s }, s)),
    );
    const form = el(
      "form",
      { class: "filters", onsubmit: (event) => {
        event.preventDefault();
        const next = new URLSearchParams();
        for (const [key, value] of new FormData(form)) if (value) next.set(key, value);
        if (state.get("order")) next.set("order", state.get("order"));
        navigate("/?" + next);
      } },
      field("q", "Name starts with", { placeholder: "resnet-", type: "search" }),
      el("label", {}, "Status", statusSelect),
      field("tag", "Tag", { placeholder: "baseline" }),
      field("group", "Group", { placeholder: "job-123" }),
      field("where", "Metadata", { placeholder: "optim.lr=0.0003" }),
      field("meta", "Metadata columns", { placeholder: "lr, optimizer" }),
      field("cols", "Summary columns", { placeholder: "val/loss:min, train/loss:last" }),
      el("button", { type: "submit" }, "Apply"),
    );
    const compare = el("button", { type: "button", class: "compare", disabled: true }, "Compare selected");
    // A group (the ranks of one distributed job) compares as a whole, from its filtered table.
    const group = state.get("group");
    const compareGroup = group
      ? el("button", { type: "button", class: "compare-group", onclick: () => navigate("/compare?group=" + enc(group)) },
          `Compare group ${group}`)
      : null;
    const tableHolder = el("div", { class: "table-holder" }, el("p", { class: "muted" }, "Loading runs…"));
    const pager = el("nav", { class: "pager" });
    app.replaceChildren(el("h1", {}, "Runs"), form, el("div", { class: "actions" }, compare, compareGroup), tableHolder, pager);

    const params = {
      page_size: state.get("size") || 50,
      name_prefix: state.get("q"),
      status: state.get("status"),
      tag: state.get("tag"),
      group: state.get("group"),
      order_by: order,
      cursor: state.get("cursor"),
    };
    if (filter) {
      const at = filter.indexOf("=");
      params.metadata_key = at > 0 ? filter.slice(0, at).trim() : filter.trim();
      if (at > 0) params.metadata_value = metadataLiteral(filter.slice(at + 1).trim());
    }
    let page;
    try {
      page = await api("/experiments", params);
    } catch (error) {
      showError(tableHolder, error);
      return;
    }
    const runs = page.data;
    const summaries = summaryColumns.length
      ? await mapLimited(runs, 6, (run) => api(`/experiments/${enc(run.id)}/summary`))
      : [];
    const folders = await Promise.all(runs.map((run) => folderName(run.folder_id)));

    // The Group column shows when a run of the page is in a group; each group links to its filtered table.
    const showGroup = Boolean(group) || runs.some((run) => run.group);
    const selected = new Set();
    const sortHeader = (label, key) => {
      const ascending = order === key;
      const descending = order === "-" + key;
      const nextOrder = ascending ? "-" + key : key; // first click ascending, then it toggles
      const link = el("a", { href: "#", onclick: (event) => {
        event.preventDefault();
        const next = new URLSearchParams(state);
        next.set("order", nextOrder);
        next.delete("cursor");
        navigate("/?" + next);
      } }, label, ascending ? " ▲" : descending ? " ▼" : "");
      return el("th", { "aria-sort": ascending ? "ascending" : descending ? "descending" : "none" }, link);
    };
    const head = el(
      "tr",
      {},
      el("th", {}, ""),
      sortHeader("Name", "name"),
      el("th", {}, "Status"),
      el("th", {}, "Folder"),
      el("th", {}, "Tags"),
      showGroup && el("th", {}, "Group"),
      sortHeader("Created", "created_at"),
      metaColumns.map((key) => el("th", {}, key)),
      summaryColumns.map((c) => sortHeader(`${c.name} ${c.agg}`, `metric:${c.name}:${c.agg}`)),
    );
    const body = runs.map((run, i) => {
      const box = el("input", { type: "checkbox", "aria-label": `select ${run.name}`, onchange: (event) => {
        if (event.target.checked) selected.add(run.id);
        else selected.delete(run.id);
        compare.disabled = selected.size < 2;
        compare.textContent = `Compare selected (${selected.size})`;
      } });
      const flat = flatten(run.metadata, "", {});
      const summary = summaries[i] ? summaries[i].metrics : [];
      return el(
        "tr",
        { "data-id": run.id },
        el("td", {}, box),
        el("td", {}, el("a", { href: `/runs/${enc(run.id)}` }, run.name)),
        el("td", {}, statusBadge(run.status)),
        el("td", {}, folders[i]),
        el("td", {}, (run.tags || []).map((t) => el("span", { class: "tag" }, t))),
        showGroup && el("td", { class: "group" }, run.group ? el("a", { href: `/?group=${enc(run.group)}` }, run.group) : ""),
        el("td", { class: "time" }, formatTime(run.created_at)),
        metaColumns.map((key) => el("td", {}, formatValue(flat[key]))),
        summaryColumns.map((c) => {
          const s = summarise(summary, c.name);
          return el("td", { class: "num" }, s ? formatValue(s[c.agg]) : "");
        }),
      );
    });
    compare.addEventListener("click", () => navigate("/compare?ids=" + [...selected].map(enc).join(",")));
    tableHolder.replaceChildren(
      runs.length
        ? el("table", { class: "runs" }, el("thead", {}, head), el("tbody", {}, body))
        : el("p", { class: "muted" }, "No runs match."),
    );
    if (state.get("cursor")) pager.append(el("button", { type: "button", onclick: () => history.back() }, "← Previous"));
    if (page.next_cursor) {
      const next = new URLSearchParams(state);
      next.set("cursor", page.next_cursor);
      pager.append(el("button", { type: "button", onclick: () => navigate("/?" + next) }, "Next →"));
    }
  }

  // ---- charts -------------------------------------------------------------------------------------------------
  // Each chart draws, per run, the mean of each bucket of getMetricSeries as a line and the bucket's min and max
  // as a band whose edges are drawn too, so a one-step spike stays visible however many points a bucket holds.
  // Dragging across a chart refetches that step range at full resolution; a double-click zooms out.
  const controls = { logY: false, smoothing: 0 };
  const charts = [];

  function smooth(values, weight) {
    // An exponential moving average of the plotted means, debiased as TensorBoard does.
    if (!weight) return values;
    let last = 0;
    let n = 0;
    return values.map((v) => {
      if (v === null || v === undefined) return v;
      last = last * weight + (1 - weight) * v;
      n += 1;
      return last / (1 - Math.pow(weight, n));
    });
  }

  function seriesData(series) {
    const xs = [], mean = [], min = [], max = [];
    for (const b of series.buckets) {
      xs.push(b.count === 1 ? b.first_step : (b.first_step + b.last_step) / 2);
      mean.push(b.mean);
      min.push(b.min);
      max.push(b.max);
    }
    return [xs, mean, min, max];
  }

  function alpha(color, a) {
    const n = parseInt(color.slice(1), 16);
    return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${a})`;
  }

  class Chart {
    constructor(holder, metric, runs, annotations) {
      this.holder = holder;
      this.metric = metric;
      this.runs = runs; // [{id, name}]
      this.annotations = annotations || [];
      this.range = null; // [min_step, max_step] when zoomed
      this.series = [];
      this.plot = null;
      this.note = el("p", { class: "chart-note muted" });
      this.target = el("div", { class: "chart", "data-metric": metric });
      this.target.tallyChart = this; // the browser tests read what was drawn
      holder.append(el("h3", {}, metric), this.target, this.note);
      this.target.addEventListener("dblclick", () => {
        if (this.range) {
          this.range = null;
          this.load();
        }
      });
    }

    width() {
      return Math.max(300, Math.min(1100, this.holder.clientWidth || 800));
    }

    async load() {
      const points = Math.min(1000, this.width());
      const params = { name: this.metric, max_points: points };
      if (this.range) {
        params.min_step = Math.max(0, Math.floor(this.range[0]));
        params.max_step = Math.max(params.min_step, Math.ceil(this.range[1]));
      }
      try {
        this.series = await Promise.all(
          this.runs.map((run) => api(`/experiments/${enc(run.id)}/metrics/series`, params)),
        );
      } catch (error) {
        showError(this.note, error);
        return;
      }
      this.draw();
    }

    data() {
      const tables = this.series.map(seriesData);
      const joined = tables.length === 1 ? tables[0] : uPlot.join(tables);
      // smoothing applies to the means only (every third column after x), never to the min/max band
      for (let run = 0; run < tables.length; run++) {
        joined[1 + run * 3] = smooth(joined[1 + run * 3], controls.smoothing);
      }
      return joined;
    }

    draw() {
      const data = this.data();
      let positive = true;
      for (let i = 1; i < data.length; i++) for (const v of data[i]) if (v !== null && v !== undefined && v <= 0) positive = false;
      const logY = controls.logY && positive;
      const total = this.series.reduce((n, s) => n + s.total_points, 0);
      const buckets = this.series.reduce((n, s) => n + s.buckets.length, 0);
      const unstepped = this.series.reduce((n, s) => n + s.unstepped_points, 0);
      this.note.replaceChildren(
        `${total.toLocaleString()} points in ${buckets.toLocaleString()} buckets` +
          (buckets < total ? " (each drawn as its mean, with its min–max band)" : " (every point)") +
          (this.range ? `; steps ${stepRange(this.range)} — double-click to zoom out` : "; drag to zoom") +
          (unstepped ? `; ${unstepped.toLocaleString()} points without a step are not drawn` : "") +
          (controls.logY && !positive ? "; log scale needs positive values, so this chart stays linear" : ""),
      );
      const seriesOpts = [{ label: "step" }];
      const bands = [];
      this.runs.forEach((run, i) => {
        const color = COLORS[i % COLORS.length];
        const label = this.runs.length > 1 ? `${run.name} ` : "";
        seriesOpts.push(
          { label: `${label}mean`, stroke: color, width: 1.5, spanGaps: true },
          { label: `${label}min`, stroke: alpha(color, 0.35), width: 1, spanGaps: true },
          { label: `${label}max`, stroke: alpha(color, 0.35), width: 1, spanGaps: true },
        );
        bands.push({ series: [3 + i * 3, 2 + i * 3], fill: alpha(color, 0.15) });
      });
      const chart = this;
      const options = {
        width: this.width(),
        height: 260,
        series: seriesOpts,
        bands,
        scales: { x: { time: false }, y: { distr: logY ? 3 : 1 } },
        axes: [{ label: "step" }, {}],
        cursor: { drag: { x: true, y: false, setScale: false } },
        // one run: the values under the cursor; several: the page's legend names the colours
        legend: { show: this.runs.length === 1, live: true },
        hooks: {
          setSelect: [(u) => {
            if (u.select.width < 3) return;
            const from = u.posToVal(u.select.left, "x");
            const to = u.posToVal(u.select.left + u.select.width, "x");
            u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
            chart.range = [from, to];
            chart.load();
          }],
          draw: [(u) => chart.drawAnnotations(u)],
        },
      };
      if (this.plot) this.plot.destroy();
      this.plot = new uPlot(options, data, this.target);
    }

    drawAnnotations(u) {
      const ctx = u.ctx;
      const [lo, hi] = [u.scales.x.min, u.scales.x.max];
      ctx.save();
      ctx.strokeStyle = "#f59e0b";
      ctx.fillStyle = "#92400e";
      ctx.setLineDash([4, 3]);
      ctx.font = `${11 * devicePixelRatio}px sans-serif`;
      for (const a of this.annotations) {
        if (a.step === null || a.step < lo || a.step > hi) continue;
        const x = Math.round(u.valToPos(a.step, "x", true));
        ctx.beginPath();
        ctx.moveTo(x, u.bbox.top);
        ctx.lineTo(x, u.bbox.top + u.bbox.height);
        ctx.stroke();
        ctx.fillText(a.text.slice(0, 24), x + 3, u.bbox.top + 12 * devicePixelRatio);
      }
      ctx.restore();
    }
  }

  function stepRange(range) {
    return `${Math.floor(range[0]).toLocaleString()}–${Math.ceil(range[1]).toLocaleString()}`;
  }

  function chartControls() {
    const log = el("input", { type: "checkbox", id: "log-y", checked: controls.logY, onchange: (event) => {
      controls.logY = event.target.checked;
      charts.forEach((c) => c.series.length && c.draw());
    } });
    const value = el("output", { for: "smoothing" }, String(controls.smoothing));
    const slider = el("input", {
      type: "range", id: "smoothing", min: "0", max: "0.99", step: "0.01", value: String(controls.smoothing),
      oninput: (event) => {
        controls.smoothing = Number(event.target.value);
        value.textContent = event.target.value;
        charts.forEach((c) => c.series.length && c.draw());
      },
    });
    return el(
      "div",
      { class: "chart-controls" },
      el("label", {}, log, " Log-scale y"),
      el("label", {}, "Smoothing ", slider, " ", value),
      el(
        "p",
        { class: "muted" },
        "Smoothing is an exponential moving average (as TensorBoard's) of the plotted bucket means only; the " +
          "min–max band, the tables and the API's values are never smoothed.",
      ),
    );
  }

  async function annotationsOf(id) {
    const out = [];
    let cursor;
    do {
      const page = await api(`/experiments/${enc(id)}/annotations`, { page_size: 1000, cursor });
      out.push(...page.data);
      cursor = page.next_cursor;
    } while (cursor && out.length < 5000);
    return out;
  }

  // ---- the run page -----------------------------------------------------------------------------------------
  let refreshTimer = null;

  async function runPage(id) {
    let run, summary, annotations;
    try {
      [run, summary, annotations] = await Promise.all([
        api(`/experiments/${enc(id)}`),
        api(`/experiments/${enc(id)}/summary`),
        annotationsOf(id),
      ]);
    } catch (error) {
      showError(app, error);
      return;
    }
    const folder = await folderName(run.folder_id);
    const flat = flatten(run.metadata, "", {});
    const metaRows = Object.keys(flat).sort().map((k) => el("tr", {}, el("th", {}, k), el("td", {}, formatValue(flat[k]))));
    const summaryRows = summary.metrics.map((m) =>
      el(
        "tr",
        {},
        el("td", {}, m.name),
        el("td", {}, Object.keys(m.metadata).length ? JSON.stringify(m.metadata) : ""),
        el("td", { class: "num" }, m.count),
        el("td", { class: "num" }, formatValue(m.last)),
        el("td", { class: "num" }, formatValue(m.min)),
        el("td", { class: "num" }, formatValue(m.max)),
        el("td", { class: "num" }, m.last_step ?? ""),
      ),
    );
    const noteRows = annotations.map((a) =>
      el("li", {}, el("span", { class: "step" }, a.step === null ? "—" : `step ${a.step}`), " ", a.text),
    );
    const chartsHolder = el("section", { class: "charts" });
    document.title = `${run.name} · Tally`;
    app.replaceChildren(
      el("h1", {}, run.name, " ", statusBadge(run.status)),
      el(
        "p",
        { class: "meta-line" },
        folder ? `in ${folder} · ` : "",
        `created ${formatTime(run.created_at)}`,
        run.ended_at ? ` · ended ${formatTime(run.ended_at)}` : "",
        " ",
        (run.tags || []).map((t) => el("span", { class: "tag" }, t)),
      ),
      run.description ? el("p", {}, run.description) : "",
      el("div", { class: "columns" },
        el("section", {}, el("h2", {}, "Metadata"),
          metaRows.length ? el("table", { class: "kv" }, el("tbody", {}, metaRows)) : el("p", { class: "muted" }, "None.")),
        el("section", {}, el("h2", {}, "Annotations"),
          noteRows.length ? el("ul", { class: "notes" }, noteRows) : el("p", { class: "muted" }, "None.")),
      ),
      el("h2", {}, "Metrics"),
      summaryRows.length
        ? el("table", { class: "summary" },
            el("thead", {}, el("tr", {}, ["metric", "labels", "points", "last", "min", "max", "last step"].map((h) => el("th", {}, h)))),
            el("tbody", {}, summaryRows))
        : el("p", { class: "muted" }, "No metrics yet."),
      chartControls(),
      chartsHolder,
    );
    charts.length = 0;
    const names = [...new Set(summary.metrics.map((m) => m.name))];
    for (const name of names) charts.push(new Chart(chartsHolder, name, [{ id: run.id, name: run.name }], annotations));
    await Promise.all(charts.map((c) => c.load()));
    if (run.status === "running") {
      refreshTimer = setTimeout(() => refreshRun(id, names), REFRESH_MS);
    }
  }

  async function refreshRun(id, names) {
    // A running experiment refreshes on its own: new metrics re-render the page, new points redraw the charts
    // that are not zoomed.
    refreshTimer = null;
    let run, summary;
    try {
      [run, summary] = await Promise.all([api(`/experiments/${enc(id)}`), api(`/experiments/${enc(id)}/summary`)]);
    } catch (_) {
      refreshTimer = setTimeout(() => refreshRun(id, names), REFRESH_MS);
      return;
    }
    const now = [...new Set(summary.metrics.map((m) => m.name))];
    if (run.status !== "running" || now.length !== names.length) {
      runPage(id);
      return;
    }
    await Promise.all(charts.filter((c) => !c.range).map((c) => c.load()));
    refreshTimer = setTimeout(() => refreshRun(id, names), REFRESH_MS);
  }

  // ---- the compare page -------------------------------------------------------------------------------------
  async function comparePage() {
    const query = new URLSearchParams(window.location.search);
    const group = query.get("group");
    let ids = (query.get("ids") || "").split(",").filter(Boolean);
    let runs, summaries;
    try {
      if (group) {
        // Every run of the group, in the order of their names with numbers as numbers (rank2 before rank10).
        const page = await api("/experiments", { group, page_size: 100 });
        runs = page.data.sort((a, b) => a.name.localeCompare(b.name, "en", { numeric: true }));
        ids = runs.map((run) => run.id);
      }
      if (ids.length < 1) {
        app.replaceChildren(el("p", { class: "error" }, group
          ? `group ${group} has no runs.`
          : "ids: select runs in the table to compare them."));
        return;
      }
      runs = runs || await Promise.all(ids.map((id) => api(`/experiments/${enc(id)}`)));
      summaries = await Promise.all(ids.map((id) => api(`/experiments/${enc(id)}/summary`)));
    } catch (error) {
      showError(app, error);
      return;
    }
    const legend = el("ul", { class: "legend" }, runs.map((run, i) =>
      el("li", {}, el("span", { class: `swatch swatch-${i % COLORS.length}` }), el("a", { href: `/runs/${enc(run.id)}` }, run.name), " ", statusBadge(run.status)),
    ));
    const chartsHolder = el("section", { class: "charts" });
    const title = group ? `Compare group ${group} (${runs.length} runs)` : `Compare ${runs.length} runs`;
    app.replaceChildren(el("h1", {}, title), legend, chartControls(), chartsHolder);
    charts.length = 0;
    const names = [...new Set(summaries.flatMap((s) => s.metrics.map((m) => m.name)))].sort();
    for (const name of names) {
      const having = runs.filter((run, i) => summaries[i].metrics.some((m) => m.name === name));
      charts.push(new Chart(chartsHolder, name, having.map((r) => ({ id: r.id, name: r.name }))));
    }
    await Promise.all(charts.map((c) => c.load()));
  }

  // ---- routing ------------------------------------------------------------------------------------------------
  function navigate(url) {
    history.pushState(null, "", url);
    route();
  }

  async function route() {
    if (refreshTimer) clearTimeout(refreshTimer);
    refreshTimer = null;
    charts.length = 0;
    const path = window.location.pathname;
    document.body.dataset.ready = "false";
    try {
      if (path === "/") await runsPage();
      else if (path.startsWith("/runs/")) await runPage(decodeURIComponent(path.slice("/runs/".length)));
      else if (path === "/compare") await comparePage();
      else app.replaceChildren(el("p", { class: "error" }, "No such page."));
    } finally {
      document.body.dataset.ready = "true"; // the browser tests wait for this
    }
  }

  window.addEventListener("popstate", route);
  api("/auth/status").then((s) => {
    document.getElementById("org").textContent = s.organization_name;
  }, () => {});
  route();
})();
