// #/buildings/{id} — one building: its verdict, each point's live value
// beside the required value and clause, charts (24 h / 7 d / 30 d), hazard
// items, who answers for it, and its gateway's health.
//   GET /api/buildings/{id}, …/points/{point}/history, /api/hazards?building=,
//   GET /api/gateways/{gateway}, maintenance windows under …/maintenance

import { h, mount, hashHref, contactNode, select } from "../lib/dom.js";
import { t, lang, fmtTime, fmtNum, fmtDuration, fmtBytes, pointLabel } from "../lib/i18n.js";
import { api, onBuilding, can, actor } from "../lib/api.js";
import { statusBadge, severityBadge, stateBadge, loading, panel, notice, facts, showError, toast } from "../lib/ui.js";
import { chart } from "../lib/chart.js";

const RANGES = { "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400 };
const GB = "GB 50974-2014 ";

/** An on/off point of the pump cabinet or the alarm panel (not the start counter). */
const isBinary = (point) => /^(pumps|panel)\./.test(point) && !/starts$/.test(point);

export async function render(ctx) {
  const id = ctx.params[0];
  const range = RANGES[ctx.query.range] ? ctx.query.range : "24h";
  const head = h("div", { id: "building-head" }, loading());
  const reasons = h("div", { id: "building-reasons" });
  const pointsBox = h("div", { id: "building-points" });
  const charts = h("div", { id: "building-charts", class: "charts" });
  const hazards = h("div", { id: "building-hazards" }, loading());
  const parties = h("div", { id: "building-parties" });
  const gateway = h("div", { id: "building-gateway" }, loading());
  const maintenance = h("div", { id: "building-maintenance" });
  const rangeTabs = h("div", { class: "tabs", role: "tablist" });

  mount(ctx.root,
    head,
    h("div", { class: "detail-grid" },
      h("div", { class: "detail-main" },
        panel(t("building.reasons"), reasons),
        panel(t("building.points"), pointsBox),
        h("section", { class: "panel" }, h("div", { class: "panel-head" }, h("h2", null, t("building.charts")), rangeTabs), charts),
        panel(t("building.hazards"), hazards)),
      h("div", { class: "detail-side" },
        panel(t("building.parties"), parties),
        panel(t("building.maintenance"), maintenance),
        panel(t("building.gatewayHealth"), gateway))));

  let detail;
  async function loadDetail() {
    detail = await api("/api/buildings/" + encodeURIComponent(id) + "?lang=" + lang(), { signal: ctx.signal });
    ctx.setTitle(detail.name);
    paintHead();
    paintReasons();
    paintPoints();
    paintParties();
  }

  function paintHead() {
    const d = detail;
    mount(head,
      h("div", { class: "page-head building-title" },
        h("a", { href: "#/buildings", class: "back" }, "‹ " + t("nav.buildings")),
        h("h1", { id: "building-name" }, d.name),
        statusBadge(d.status),
        h("span", { class: "muted" }, t("updated", { time: fmtTime(d.updated_at, true) }))),
      h("div", { class: "meta" },
        h("span", null, d.id),
        h("span", null, [d.district, d.town, d.community].filter(Boolean).join(" / ")),
        d.address ? h("span", null, d.address) : null,
        h("span", null, t("building.class") + " " + (lang() === "zh" ? d.class_name : t("class." + d.class))),
        h("span", null, t("building.height") + " " + fmtNum(d.height_m, 1) + " m"),
        h("span", null, t("building.storeys") + " " + d.storeys),
        h("span", null, t("building.gateway") + " " + d.gateway)));
  }

  function paintReasons() {
    const list = detail.reasons || [];
    if (!list.length) return mount(reasons, notice(t("status." + detail.status), detail.status === "ok" ? "ok" : "info"));
    mount(reasons, h("ul", { class: "reason-list" }, list.map((r) =>
      h("li", { class: r.current ? null : "pending" },
        h("span", null, r.message),
        r.clause ? h("span", { class: "clause" }, r.clause) : null,
        r.since ? h("span", { class: "muted small" }, t("building.since", { time: fmtTime(r.since) })) : null,
        r.current ? null : h("span", { class: "badge soft" }, t("building.pending"))))));
  }

  /** What the point must read, and by which clause: from a reason about it, else the building's requirements. */
  function requirement(point) {
    const r = (detail.reasons || []).find((x) => x.point === point && x.required != null);
    const req = detail.requirements || {};
    if (point === "tank.level" && req.tank_volume_m3 != null)
      return { text: t("building.volumeReq", { v: fmtNum(r?.required ?? req.tank_volume_m3, 1) }), clause: r?.clause || GB + "5.2.1" };
    if (point === "riser.pressure" && req.static_pressure_mpa != null)
      return { text: t("building.pressureReq", { v: fmtNum(r?.required ?? req.static_pressure_mpa, 2) }), clause: r?.clause || GB + "5.2.2" };
    if (r) return { text: "≥ " + fmtNum(r.required, 2), clause: r.clause };
    return null;
  }

  /** An on/off point in words, and whether that state is a problem. */
  function binaryState(p) {
    const on = p.value !== 0;
    if (/_auto$/.test(p.point)) return { word: t(on ? "bin.auto" : "bin.manual"), bad: !on };
    if (/_running$/.test(p.point)) return { word: t(on ? "bin.running" : "bin.stopped"), bad: false };
    if (p.point === "panel.fire_alarm") return { word: t(on ? "bin.alarm" : "bin.normal"), bad: on };
    if (p.point === "panel.reset") return { word: on ? t("bin.on") : t("bin.off"), bad: false };
    return { word: t(on ? "bin.fault" : "bin.normal"), bad: on };
  }

  function valueCell(p) {
    if (p.value == null) return h("td", { class: "num muted" }, "—");
    const volume = (detail.reasons || []).find((r) => r.point === p.point && r.value != null && p.point === "tank.level");
    return h("td", { class: "num" },
      h("strong", null, fmtNum(p.value, 3)), p.unit ? " " + p.unit : "",
      volume ? h("div", { class: "sub" }, t("building.effectiveVolume", { v: fmtNum(volume.value, 1) })) : null);
  }

  const qualityBadge = (p) => [
    h("span", { class: "badge quality-" + p.quality }, t("quality." + p.quality) + (p.exception != null ? " #" + p.exception : "")),
    p.clock ? h("span", { class: "badge soft", title: p.gateway_ts ? fmtTime(p.gateway_ts, true) : null }, t("clock." + p.clock)) : null,
  ];

  function paintPoints() {
    const points = [...(detail.points || [])].sort((a, b) => order(a.point) - order(b.point) || a.point.localeCompare(b.point));
    if (!points.length) return mount(pointsBox, notice(t("building.noPoints")));
    const flagged = new Set((detail.reasons || []).filter((r) => r.current && r.point).map((r) => r.point));
    const analog = points.filter((p) => !isBinary(p.point));
    const binary = points.filter((p) => isBinary(p.point));
    mount(pointsBox,
      h("div", { class: "table-wrap" }, h("table", { class: "table points" },
        h("thead", null, h("tr", null, h("th", null, t("building.point")), h("th", { class: "num" }, t("building.value")),
          h("th", null, t("building.required")), h("th", null, t("building.clause")), h("th", null, t("building.quality")),
          h("th", { class: "nowrap" }, t("building.readAt")))),
        h("tbody", null, analog.map((p) => {
          const req = requirement(p.point);
          return h("tr", { "data-point": p.point, class: flagged.has(p.point) ? "flagged status-" + detail.status : null },
            h("td", null, pointLabel(p.point), h("div", { class: "sub mono" }, p.point)),
            valueCell(p),
            h("td", null, req ? req.text : "—"),
            h("td", { class: "small" }, req?.clause || "—"),
            h("td", null, qualityBadge(p)),
            h("td", { class: "nowrap muted" }, fmtTime(p.ts, true)));
        })))),
      binary.length ? h("h3", null, t("building.equipment")) : null,
      binary.length ? h("div", { class: "tiles" }, binary.map((p) => {
        const state = p.value == null ? { word: "—", bad: false } : binaryState(p);
        // Red only where the rules flag it; an off-normal state they do not
        // judge here (e.g. no jockey pump configured) is amber.
        const cls = flagged.has(p.point) ? "bad" : state.bad ? "attention" : null;
        return h("div", { class: ["tile", cls, p.quality !== "good" && "doubtful"], "data-point": p.point,
          title: p.point + " · " + fmtTime(p.ts, true) },
          h("span", { class: "tile-label" }, pointLabel(p.point)),
          h("span", { class: "tile-value" }, state.word),
          p.quality !== "good" || p.clock ? h("span", { class: "tile-quality" }, qualityBadge(p)) : null);
      })) : null);
  }

  // Charts: one per analogue point, redrawn when the range changes.
  let plots = [];
  const destroyPlots = () => { plots.forEach((p) => p.destroy()); plots = []; };
  ctx.onCleanup(destroyPlots);

  function paintTabs(active) {
    mount(rangeTabs, Object.keys(RANGES).map((key) =>
      h("button", { type: "button", role: "tab", class: key === active ? "active" : null, "aria-selected": String(key === active),
        "data-range": key, onclick: () => { ctx.setQuery({ ...ctx.query, range: key }); ctx.query.range = key; paintTabs(key); loadCharts(key); } },
        t("building.range" + key))));
  }

  async function loadCharts(key) {
    destroyPlots();
    const analog = (detail.points || []).map((p) => p.point).filter((p) => !isBinary(p) && !/starts$/.test(p))
      .sort((a, b) => order(a) - order(b));
    const to = new Date();
    const from = new Date(to.getTime() - RANGES[key] * 1000);
    const boxes = analog.map((point) => h("div", { class: "chart", "data-point": point }, h("h3", null, pointLabel(point)), loading()));
    mount(charts, boxes.length ? boxes : notice(t("building.noPoints")));
    await Promise.all(analog.map(async (point, i) => {
      const box = boxes[i];
      try {
        const hist = await api("/api/buildings/" + encodeURIComponent(id) + "/points/" + encodeURIComponent(point) +
          "/history?from=" + encodeURIComponent(from.toISOString()) + "&to=" + encodeURIComponent(to.toISOString()), { signal: ctx.signal });
        box.lastChild.remove();
        if (!hist.points.length) return box.append(notice(t("building.noHistory")));
        const unit = detail.points.find((p) => p.point === point)?.unit || "";
        const threshold = point === "riser.pressure" ? detail.requirements?.static_pressure_mpa : null;
        plots.push(chart(box, hist, { unit, threshold, from, to }));
      } catch (e) {
        if (e.name === "AbortError") return;
        box.lastChild.remove();
        box.append(notice(t("error", { error: e.message }), "error"));
      }
    }));
  }

  async function loadHazards() {
    try {
      const out = await api("/api/hazards?building=" + encodeURIComponent(id) + "&limit=200&lang=" + lang(), { signal: ctx.signal });
      const open = out.items.filter((x) => x.state !== "closed");
      const past = out.items.filter((x) => x.state === "closed");
      const table = (items) => items.length
        ? h("table", { class: "table compact" }, h("tbody", null, items.map((x) =>
          h("tr", { class: x.overdue ? "overdue" : null, "data-hazard": x.id },
            h("td", { class: "nowrap" }, severityBadge(x.severity), " ", stateBadge(x.state)),
            h("td", null, x.message, x.overdue ? h("span", { class: "badge overdue-badge" }, t("hazards.overdue")) : null),
            h("td", { class: "nowrap muted small" }, fmtTime(x.opened_at), h("div", null, "→ " + fmtTime(x.deadline)))))))
        : h("p", { class: "muted" }, t("none"));
      mount(hazards,
        h("h3", null, t("building.openHazards") + " (" + open.length + ")"), table(open),
        h("h3", null, t("building.pastHazards") + " (" + past.length + ")"), table(past.slice(0, 20)),
        h("a", { href: hashHref("/hazards", { building: id, state: "all" }) }, t("building.allHazards") + " ›"));
    } catch (e) {
      if (e.name !== "AbortError") showError(hazards, e);
    }
  }

  function paintParties() {
    const p = detail.parties;
    if (!p) return mount(parties, h("p", { class: "muted" }, t("building.noParties")));
    mount(parties, facts([
      ["management_unit", "building.managementUnit"], ["contractor", "building.contractor"], ["building_manager", "building.buildingManager"],
    ].map(([key, label]) => [t(label), partyNode(withContacts(p, key))])));
  }

  async function loadGateway() {
    try {
      const g = await api("/api/gateways/" + encodeURIComponent(detail.gateway), { signal: ctx.signal });
      mount(gateway, gatewayFacts(g));
    } catch (e) {
      if (e.name !== "AbortError") showError(gateway, e);
    }
  }

  // Maintenance mode (维保模式): nobody is paged while a window is in force.
  async function loadMaintenance() {
    try {
      const windows = await api("/api/buildings/" + encodeURIComponent(id) + "/maintenance", { signal: ctx.signal });
      const now = Date.now();
      const inForce = windows.find((w) => !w.ended_at && Date.parse(w.starts_at) <= now && Date.parse(w.until) > now);
      const act = async (path, body) => {
        try {
          await api("/api/buildings/" + encodeURIComponent(id) + path, { method: "POST", body: { by: actor(), ...body } });
          toast(t("hazards.done"));
          await Promise.all([loadDetail(), loadMaintenance()]);
        } catch (e) {
          toast(t("error", { error: e.message }), "error");
        }
      };
      let controls = null;
      if (can("maintenance") && inForce) {
        controls = h("button", { type: "button", class: "small", id: "maintenance-end", onclick: () => act("/maintenance/end", {}) },
          t("maint.end"));
      } else if (can("maintenance")) {
        const hours = select({ id: "maintenance-hours", "aria-label": t("maint.duration") },
          [[2, t("unit.h", { n: 2 })], [8, t("unit.h", { n: 8 })], [24, t("unit.h", { n: 24 })], [72, t("unit.d", { n: 3 })],
            [168, t("unit.d", { n: 7 })]], 8);
        const note = h("input", { id: "maintenance-note", maxlength: 1000, placeholder: t("maint.note") });
        controls = h("form", { class: "maint-form", onsubmit: (ev) => {
          ev.preventDefault();
          const until = new Date(Date.now() + Number(hours.value) * 3600e3).toISOString();
          act("/maintenance", { until, note: note.value.trim() });
        } }, hours, note, h("button", { type: "submit", class: "small" }, t("maint.start")));
      }
      mount(maintenance,
        inForce ? notice(t("maint.inForce", { until: fmtTime(inForce.until), by: inForce.by }), "info") : null,
        windows.length ? h("ul", { class: "maint-list" }, windows.slice(0, 5).map((w) =>
          h("li", null, h("span", { class: "muted small" }, fmtTime(w.starts_at) + " → " + fmtTime(w.ended_at || w.until)),
            h("div", null, w.by, w.note ? " · " + w.note : "", w.ended_by ? h("span", { class: "muted" }, " · " + t("maint.endedBy", { by: w.ended_by })) : null))))
          : h("p", { class: "muted small" }, t("none")),
        controls);
    } catch (e) {
      if (e.name !== "AbortError") showError(maintenance, e);
    }
  }

  // Live values: re-read on this building's events, and every 15 s.
  ctx.onCleanup(onBuilding((ev) => { if (ev.resync || ev.id === id) loadDetail().catch(() => {}); }));
  const timer = setInterval(() => loadDetail().catch(() => {}), 15000);
  const gwTimer = setInterval(() => loadGateway(), 60000);
  ctx.onCleanup(() => { clearInterval(timer); clearInterval(gwTimer); });

  try {
    await loadDetail();
  } catch (e) {
    if (e.status === 404) return mount(ctx.root, notice(t("notFound") + ": " + id, "error"));
    throw e;
  }
  paintTabs(range);
  loadCharts(range);
  loadHazards();
  loadGateway();
  loadMaintenance();
}

const ORDER = ["tank.level", "pool.level", "riser.pressure", "sprinkler.pressure", "hydrant.pressure"];
function order(point) {
  const i = ORDER.indexOf(point);
  if (i >= 0) return i;
  return isBinary(point) ? 100 : 50;
}

const PARTY_KEYS = { phone: "party.phone", mobile: "party.phone", tel: "party.phone", email: "party.email",
  contact: "party.contact", person: "party.contact", name: "party.name", sms: "party.phone", wecom: "party.wecom",
  dingtalk: "party.dingtalk", webhook: "party.webhook", contacts: "party.contact" };

/** A party with the flat contact fields served beside it (`contractor_email`, `…_phone`, `…_contacts`). */
function withContacts(parties, key) {
  const party = parties[key];
  const extra = Object.entries(parties).filter(([k, v]) => k.startsWith(key + "_") && v != null && v !== "");
  if (!extra.length) return party;
  const base = party && typeof party === "object" ? { ...party } : { name: party };
  for (const [k, v] of extra) base[k.slice(key.length + 1)] = v;
  return base;
}

/** A party as served: a name, or an object with a name and contacts (any shape; all shown as text). */
function partyNode(p) {
  if (p == null || p === "") return h("span", { class: "muted" }, "—");
  if (typeof p !== "object") return h("strong", null, String(p));
  const lines = [];
  const add = (key, value) => {
    if (value == null || value === "") return;
    if (Array.isArray(value)) return value.forEach((v) => add(key, v));
    if (typeof value === "object") {
      const label = value.kind || value.type || key;
      const v = value.value ?? value.phone ?? value.email ?? value.address ?? value.name;
      if (v != null) add(label, v);
      return;
    }
    lines.push(h("div", { class: "contact" },
      h("span", { class: "muted" }, (PARTY_KEYS[key] ? t(PARTY_KEYS[key]) : key) + " "), contactNode(value)));
  };
  for (const [k, v] of Object.entries(p)) if (k !== "name") add(k, v);
  return h("div", null, h("strong", null, p.name || "—"), lines);
}

function gatewayFacts(g) {
  const hl = g.health;
  const online = g.online == null ? t("gw.never") : g.online ? t("gw.online") : t("gw.offline");
  const cls = g.online == null ? "unknown" : g.online ? "ok" : "failing";
  const rows = [
    [t("building.gateway"), h("span", null, h("span", { class: "dot status-" + cls }), " " + g.id + " · " + online)],
    [t("gw.lastSeen"), fmtTime(g.last_seen, true)],
    g.software ? [t("gw.software"), g.software] : null,
  ];
  if (hl) {
    const o = hl.outbox || {};
    rows.push(
      [t("gw.buffer"), t("gw.bufferValue", { readings: fmtNum(o.readings, 0), events: fmtNum(o.events, 0) })],
      o.oldest_age_secs != null ? [t("gw.oldest"), fmtDuration(o.oldest_age_secs)] : null,
      [t("gw.disk"), fmtBytes(o.bytes) + " / " + fmtBytes(o.limit_bytes)],
      (o.thinned || o.dropped) ? [t("gw.thinned"), fmtNum(o.thinned, 0) + " / " + fmtNum(o.dropped, 0)] : null,
      [t("gw.clock"), h("span", null,
        h("span", { class: "badge " + (hl.clock?.trusted ? "quality-good" : "quality-stale") },
          hl.clock?.trusted ? t("gw.clockTrusted") : t("gw.clockUntrusted")),
        " " + t("gw.clockDetail", { jumps: hl.clock?.jumps ?? 0, held: hl.clock?.held ?? 0 }))],
      [t("gw.uptime"), fmtDuration(hl.uptime_secs)],
      hl.disk_free_bytes != null ? [t("gw.diskFree"), fmtBytes(hl.disk_free_bytes)] : null,
      [t("gw.healthAt"), fmtTime(g.health_at, true)],
    );
  }
  rows.push([t("gw.missing"), h("span", { class: g.missing ? "hot-warning" : null }, fmtNum(g.missing, 0))]);
  return [facts(rows), hl ? null : h("p", { class: "muted small" }, t("gw.noHealth"))];
}
