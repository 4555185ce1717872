"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("report-data").textContent);
  const SEVERITIES = ["critical", "high", "medium", "low", "informational"];
  const PAGE_SIZE = 50;
  const SVG = "http://www.w3.org/2000/svg";

  // Every value from the logs goes in as text (textContent), never as markup.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value !== undefined && value !== null) node.setAttribute(key, String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }
  const sev = (label) => el("span", { class: "sev " + label }, label);
  const short = (iso) => (iso || "").replace("T", " ").replace("Z", "");
  const byId = (id) => document.getElementById(id);

  function cards() {
    const totals = DATA.totals;
    const box = byId("cards");
    box.appendChild(el("div", { class: "card", id: "card-total" }, el("div", { class: "n" }, totals.alerts), "alerts"));
    for (const label of SEVERITIES) {
      box.appendChild(el("div", { class: "card " + label, id: "card-" + label },
        el("div", { class: "n" }, totals.by_severity[label] || 0), label));
    }
    box.appendChild(el("div", { class: "card" }, el("div", { class: "n" }, DATA.hosts_total), "hosts"));
    box.appendChild(el("div", { class: "card" }, el("div", { class: "n" }, (DATA.incidents || []).length), "incidents"));
  }

  function chart() {
    const buckets = DATA.timeline.buckets;
    const holder = byId("chart");
    if (!buckets.length) { holder.appendChild(el("p", { class: "muted" }, "No alerts.")); return; }
    const size = DATA.timeline.bucket_seconds;
    byId("bucket").textContent = "(one bar = " + (size >= 86400 ? size / 86400 + " day(s)" : size >= 3600 ?
      size / 3600 + " hour(s)" : size / 60 + " minute(s)") + ", UTC)";
    const width = 1000, height = 260, left = 48, bottom = 40, top = 10;
    const totals = buckets.map((b) => Object.values(b.counts).reduce((a, n) => a + n, 0));
    const peak = Math.max(1, ...totals);
    const step = (width - left - 10) / buckets.length;
    const bar = Math.max(1, step * 0.8);
    const plot = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", id: "timeline",
      "aria-label": "alerts by severity over time" });
    plot.appendChild(svg("line", { x1: left, y1: height - bottom, x2: width - 5, y2: height - bottom, stroke: "#999" }));
    for (const tick of [...new Set([0, Math.round(peak / 2), peak])]) {
      const y = height - bottom - (tick / peak) * (height - bottom - top);
      plot.appendChild(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", "font-size": 11 }, String(tick)));
    }
    buckets.forEach((bucket, index) => {
      let y = height - bottom;
      const x = left + index * step + (step - bar) / 2;
      for (const label of [...SEVERITIES].reverse()) {
        const count = bucket.counts[label] || 0;
        if (!count) continue;
        const h = (count / peak) * (height - bottom - top);
        y -= h;
        const rect = svg("rect", { x: x, y: y, width: bar, height: Math.max(h, 0.5), class: "bar " + label,
          "data-count": count, "data-severity": label, "data-start": bucket.start });
        rect.appendChild(svg("title", {}, `${short(bucket.start)}: ${count} ${label}`));
        plot.appendChild(rect);
      }
    });
    const labels = Math.min(buckets.length, 6);
    for (let i = 0; i < labels; i++) {
      const index = Math.round(i * (buckets.length - 1) / Math.max(1, labels - 1));
      plot.appendChild(svg("text", { x: left + index * step + step / 2, y: height - bottom + 16,
        "text-anchor": "middle", "font-size": 11 }, short(buckets[index].start).slice(0, 16)));
    }
    holder.appendChild(plot);
    const legend = byId("legend");
    for (const label of SEVERITIES) legend.appendChild(el("span", {}, el("i", { class: label }), label));
  }

  function table(id, rows, cells, total, noteId, noun) {
    const body = document.querySelector("#" + id + " tbody");
    for (const row of rows) body.appendChild(el("tr", {}, ...cells(row)));
    byId(noteId).textContent = total > rows.length ?
      `${rows.length} of ${total} ${noun} shown (the ones with the worst alerts).` : `${total} ${noun}.`;
  }
  const td = (value, cls) => el("td", cls ? { class: cls } : {}, value);
  const counts = (obj) => Object.entries(obj).map(([k, v]) => k + " " + v).join(", ");

  function hosts() {
    table("hosts", DATA.hosts, (r) => [td(r.host), el("td", {}, sev(r.worst)), td(r.alerts, "num"),
      td(counts(r.by_severity)), td(r.processes, "num"), td(short(r.first)), td(short(r.last))],
      DATA.hosts_total, "hosts-note", "hosts");
  }
  function processes() {
    table("processes", DATA.processes, (r) => [td(r.process), el("td", {}, sev(r.worst)), td(r.hosts, "num"),
      td(r.alerts, "num"), td(r.rules.join(", ")), td(counts(r.path_classes))],
      DATA.processes_total, "processes-note", "executables");
  }

  function field(list, name, value) {
    if (value === undefined || value === null || value === "") return;
    list.appendChild(el("dt", {}, name));
    list.appendChild(el("dd", {}, typeof value === "object" ? value : String(value)));
  }

  function alertNode(alert) {
    const p = alert.process, e = alert.endpoint;
    const where = (e.canonical || e.raw) + (e.path || "");
    const head = el("summary", {}, sev(alert.severity), " ", short(alert.timestamp), " · ", alert.host || "(no host)",
      " · ", p.name || p.path || "(no process)", " → ", where, " · ", alert.rule_id,
      alert.suppressed_by ? " · suppressed by " + alert.suppressed_by : "");
    const list = el("dl");
    field(list, "rule", el("span", {}, alert.title + " ", el("a", { href: "#guide-" + alert.rule_id }, "guide")));
    field(list, "endpoint (decoded)", `${e.canonical} (${e.provider})${e.port ? " port " + e.port : ""}`);
    field(list, "as written", e.raw);
    field(list, "path", e.path);
    field(list, "path class", e.path_class);
    field(list, "process", p.path || p.name);
    field(list, "pid", p.pid);
    field(list, "command line", p.command_line);
    field(list, "parent", p.parent_path || p.parent_name);
    field(list, "user", alert.user);
    if (alert.request) field(list, "request", `${alert.request.method} ${alert.request.host}${alert.request.uri} ` +
      `status ${alert.request.status ?? "?"} from ${alert.request.client} (${alert.request.outcome || "no status"})`);
    if (alert.group) field(list, "grouped", `${alert.group.count} records ${short(alert.group.first)} – ${short(alert.group.last)}`);
    field(list, "why not allowlisted", alert.why_not_allowlisted);
    field(list, "source", `${alert.source} (${alert.format})`);
    field(list, "respond", alert.guide);
    const reasons = el("ul", {}, ...alert.reasons.map((r) => el("li", {}, r)));
    const body = el("div", { class: "body" }, list, el("strong", {}, "why it alerted"), reasons,
      el("strong", {}, "raw log record"), el("pre", { class: "raw" }, alert.raw || "(not kept)"));
    return el("details", { class: "alert " + alert.severity, "data-severity": alert.severity }, head, body);
  }

  let page = 0, shown = DATA.alerts;
  function renderAlerts() {
    const holder = byId("alerts");
    holder.replaceChildren();
    const pages = Math.max(1, Math.ceil(shown.length / PAGE_SIZE));
    page = Math.min(page, pages - 1);
    for (const alert of shown.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE)) holder.appendChild(alertNode(alert));
    byId("page").textContent = `page ${page + 1} of ${pages}`;
    byId("alert-status").textContent = `${shown.length} matching`;
    byId("prev").disabled = page === 0;
    byId("next").disabled = page >= pages - 1;
  }
  function alerts() {
    const select = byId("f-severity");
    for (const label of SEVERITIES) select.appendChild(el("option", { value: label }, label));
    const t = DATA.totals;
    byId("alerts-note").textContent = t.not_listed ?
      `${t.listed} alerts listed with their evidence (highest severity, then newest); ${t.not_listed} more are ` +
      "counted in the chart and tables above but not listed: use the JSON-lines output for all of them." :
      `${t.listed} alerts, highest severity first, then newest.`;
    const apply = () => {
      const level = select.value, text = byId("f-text").value.toLowerCase();
      shown = DATA.alerts.filter((a) => (!level || a.severity === level) && (!text ||
        [a.host, a.rule_id, a.process.path, a.process.name, a.process.command_line, a.endpoint.path,
         a.endpoint.canonical, a.user].join(" ").toLowerCase().includes(text)));
      page = 0; renderAlerts();
    };
    select.addEventListener("change", apply);
    byId("f-text").addEventListener("input", apply);
    byId("prev").addEventListener("click", () => { page--; renderAlerts(); });
    byId("next").addEventListener("click", () => { page++; renderAlerts(); });
    renderAlerts();
  }

  function incidents() {
    const list = DATA.incidents || [];
    byId("incident-count").textContent = `(${list.length})`;
    const holder = byId("incidents");
    if (!list.length) { holder.appendChild(el("p", { class: "muted" }, "No incidents from correlation in this scan.")); return; }
    for (const inc of list) {
      const title = inc.title || inc.summary || inc.id || "incident";
      const steps = inc.timeline || inc.events || inc.alerts || [];
      const facts = Object.entries(inc).filter(([k, v]) => !["timeline", "events", "alerts", "title", "type"]
        .includes(k) && v !== null && v !== "" && (typeof v !== "object" || Array.isArray(v)))
        .map(([k, v]) => k + ": " + (Array.isArray(v) ? v.join(", ") : v)).join(" · ");
      const items = steps.map((s) => el("li", { class: "step" }, typeof s === "object" ?
        [short(s.timestamp || s.time || s.first || ""), s.side ? "[" + s.side + "]" : "",
         s.severity ? "[" + s.severity + "]" : "",
         s.summary || s.message || s.description || s.title || s.rule_id || s.operation || "", s.host || "",
         s.source ? "(" + (typeof s.source === "object" ? s.source.file + ":" + s.source.line : s.source) + ")" : ""]
          .filter(Boolean).join(" ") : String(s)));
      const node = el("div", { class: "incident" }, el("strong", {}, inc.severity ? sev(String(inc.severity)) : null, " ", title),
        el("div", { class: "muted" }, facts), el("ol", {}, ...items));
      holder.appendChild(node);
    }
  }

  function input() {
    byId("summary-text").textContent = DATA.summary_text;
    const body = document.querySelector("#files tbody");
    for (const f of DATA.summary.files) body.appendChild(el("tr", { class: f.status },
      td(f.name), td(f.format), td(f.records, "num"), td(f.status), td(f.detail)));
    for (const m of DATA.summary.missing) body.appendChild(el("tr", { class: "missing" },
      td(m.path), td(""), td(0, "num"), td("not read"), td(m.reason)));
  }

  function guides() {
    const holder = byId("guides");
    const sections = [["Investigation guide", "investigate"], ["Response playbook", "respond"], ["Harden", "harden"],
      ["Tuning: allowlist safely", "allow_safely"], ["Tuning: never allowlist", "never_allow"],
      ["Known false positives", "false_positives"]];
    for (const guide of Object.values(DATA.guides)) {
      const node = el("details", { class: "guide", id: "guide-" + guide.rule_id },
        el("summary", {}, el("strong", {}, guide.rule_id), " — ", guide.title));
      node.appendChild(el("p", {}, guide.summary));
      for (const [name, key] of sections) {
        if (!guide[key].length) continue;
        node.appendChild(el("h4", {}, name));
        node.appendChild(el("ol", {}, ...guide[key].map((s) => el("li", {}, s))));
      }
      const revoke = Object.entries(guide.revoke);
      if (revoke.length) {
        node.appendChild(el("h4", {}, "Revoke the credentials"));
        node.appendChild(el("ul", {}, ...revoke.flatMap(([p, steps]) => steps.map((s) => el("li", {}, p.toUpperCase() + ": " + s)))));
      }
      if (guide.hunting.length || guide.hunt.length) {
        node.appendChild(el("h4", {}, "Hunting"));
        node.appendChild(el("p", {}, [...guide.hunting.map((q) => "KQL: " + q),
          ...guide.hunt.map((h) => "imds-detect hunt " + h)].join(" · ") + " — full queries: " + guide.reference));
      }
      holder.appendChild(node);
    }
    if (location.hash.startsWith("#guide-")) { const g = document.querySelector(location.hash); if (g) g.open = true; }
    document.addEventListener("click", (ev) => {
      const a = ev.target.closest ? ev.target.closest("a[href^='#guide-']") : null;
      if (a) { const g = document.querySelector(a.getAttribute("href")); if (g) g.open = true; }
    });
  }

  byId("generated").textContent = DATA.generated;
  cards(); chart(); incidents(); hosts(); processes(); alerts(); input(); guides();
  document.body.setAttribute("data-ready", "1");
})();
