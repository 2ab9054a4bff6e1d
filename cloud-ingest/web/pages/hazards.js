// #/hazards — the hazard list (隐患清单): filters by state, severity,
// building and overdue (server side, GET /api/hazards), the trail of an
// item (GET /api/hazards/{id}), and the actions the signed-in role may take:
// acknowledge, remark, close (销号) (POST /api/hazards/{id}/…).

import { h, mount, select } from "../lib/dom.js";
import { t, lang, fmtTime, fmtNum } from "../lib/i18n.js";
import { api, can, actor } from "../lib/api.js";
import { severityBadge, stateBadge, loading, notice, pager, toast, showError } from "../lib/ui.js";

const LIMIT = 50;
const ACTIVE = "open,acknowledged,resolved";

export async function render(ctx) {
  ctx.setTitle(t("hazards.title"));
  const q = { state: "active", severity: "", building: "", overdue: "", offset: "0", ...ctx.query };
  const filters = h("div", { class: "filters", id: "hazard-filters" });
  const list = h("div", { id: "hazard-list" }, loading());
  mount(ctx.root, h("div", { class: "page-head" }, h("h1", null, t("hazards.title"))), filters, list);

  // Building names for the filter (the list the user may see).
  let buildings = [];
  try { buildings = await api("/api/buildings?lang=" + lang(), { signal: ctx.signal }); } catch (e) { if (e.name === "AbortError") throw e; }
  const open = new Set(); // items whose trail is shown
  const forms = new Map(); // id → "remark" | "close"

  function paintFilters() {
    const change = (key) => (ev) => { q[key] = ev.target.value; q.offset = "0"; ctx.setQuery(q); load(); };
    const names = buildings.map((b) => [b.id, b.name + " (" + b.id + ")"]).sort((a, b) => a[1].localeCompare(b[1], "zh"));
    if (q.building && !names.some(([id]) => id === q.building)) names.unshift([q.building, q.building]);
    mount(filters,
      select({ id: "f-state", onchange: change("state"), "aria-label": t("hazards.state") },
        [["active", t("hazards.notClosed")], ["all", t("hazards.anyState")],
          ...["open", "acknowledged", "resolved", "closed"].map((s) => [s, t("state." + s)])], q.state),
      select({ id: "f-severity", onchange: change("severity"), "aria-label": t("hazards.severity") },
        [["", t("hazards.anySeverity")], ...["urgent", "general", "monitoring"].map((s) => [s, t("severity." + s)])], q.severity),
      select({ id: "f-building", onchange: change("building"), "aria-label": t("col.building") },
        [["", t("hazards.anyBuilding")], ...names], q.building),
      select({ id: "f-overdue", onchange: change("overdue"), "aria-label": t("hazards.overdue") },
        [["", t("hazards.anyOverdue")], ["true", t("hazards.overdueOnly")], ["false", t("hazards.onTime")]], q.overdue));
  }

  let data = { total: 0, items: [] };
  async function load() {
    const params = new URLSearchParams({ lang: lang(), limit: LIMIT, offset: q.offset });
    if (q.state === "active") params.set("state", ACTIVE);
    else if (q.state && q.state !== "all") params.set("state", q.state);
    if (q.severity) params.set("severity", q.severity);
    if (q.building) params.set("building", q.building);
    if (q.overdue) params.set("overdue", q.overdue);
    try {
      data = await api("/api/hazards?" + params, { signal: ctx.signal });
      paint();
    } catch (e) {
      if (e.name !== "AbortError") showError(list, e);
    }
  }

  async function act(item, action, body) {
    try {
      await api("/api/hazards/" + item.id + "/" + action + "?lang=" + lang(), { method: "POST", body: { by: actor(), ...body } });
      forms.delete(item.id);
      toast(t("hazards.done"));
      await load();
    } catch (e) {
      toast(t("error", { error: e.message }), "error");
    }
  }

  function actions(item) {
    const buttons = [];
    if (can("acknowledge") && item.state === "open")
      buttons.push(h("button", { type: "button", class: "small primary", "data-action": "acknowledge",
        onclick: (ev) => { ev.target.disabled = true; act(item, "acknowledge", {}); } }, t("hazards.acknowledge")));
    if (can("remark"))
      buttons.push(h("button", { type: "button", class: "small", "data-action": "remark",
        onclick: () => { forms.set(item.id, "remark"); paint(); } }, t("hazards.remark")));
    if (can("close") && item.state === "resolved")
      buttons.push(h("button", { type: "button", class: "small", "data-action": "close",
        onclick: () => { forms.set(item.id, "close"); paint(); } }, t("hazards.close")));
    return buttons;
  }

  function form(item, kind) {
    const text = h("textarea", { rows: 2, maxlength: 1000, required: true, name: kind === "close" ? "remark" : "text",
      placeholder: kind === "close" ? t("hazards.closeRemark") : t("hazards.remarkText") });
    setTimeout(() => text.focus());
    return h("form", { class: "inline-form", "data-form": kind, onsubmit: (ev) => {
      ev.preventDefault();
      const value = text.value.trim();
      if (!value) return;
      act(item, kind === "close" ? "close" : "remarks", kind === "close" ? { remark: value } : { text: value });
    } },
    text,
    h("button", { type: "submit", class: "small primary" }, kind === "close" ? t("hazards.close") : t("save")),
    h("button", { type: "button", class: "small ghost", onclick: () => { forms.delete(item.id); paint(); } }, t("cancel")));
  }

  function row(x) {
    const toggle = () => { open.has(x.id) ? open.delete(x.id) : open.add(x.id); paint(); };
    return h("tr", { class: ["item", x.overdue && "overdue", x.escalation && "escalated"], "data-hazard": x.id, "data-state": x.state },
      h("td", { class: "nowrap" }, h("button", { type: "button", class: "toggle", "aria-expanded": String(open.has(x.id)), onclick: toggle },
        h("span", { class: "caret", "aria-hidden": "true" }, open.has(x.id) ? "▾" : "▸"), "#" + x.id)),
      h("td", null, severityBadge(x.severity)),
      h("td", { class: "state-cell" }, stateBadge(x.state)),
      h("td", null, h("a", { href: "#/buildings/" + encodeURIComponent(x.building_id) }, x.building_name || x.building_id),
        h("div", { class: "sub" }, [x.town, x.building_id].filter(Boolean).join(" · "))),
      h("td", { class: "message" }, h("div", null, x.message),
        h("div", { class: "sub" },
          x.value != null || x.required != null ? t("hazards.valueReq", { value: fmtNum(x.value, 3), required: fmtNum(x.required, 3) }) + " " : "",
          x.clause ? h("span", { class: "clause" }, x.clause) : null,
          x.escalation ? h("span", { class: "badge escalation" }, t("hazards.escalation" + Math.min(2, x.escalation))) : null),
        x.acknowledged_by ? h("div", { class: "sub" }, t("hazards.ackBy", { by: x.acknowledged_by, time: fmtTime(x.acknowledged_at) })) : null,
        x.closed_by ? h("div", { class: "sub" }, t("hazards.closedBy", { by: x.closed_by, time: fmtTime(x.closed_at) }),
          x.closed_remark ? " — " + x.closed_remark : "") : null),
      h("td", { class: "nowrap muted" }, fmtTime(x.opened_at)),
      h("td", { class: "nowrap deadline" }, fmtTime(x.deadline),
        x.overdue ? h("div", null, h("span", { class: "badge overdue-badge" }, t("hazards.overdue"))) : null),
      h("td", { class: "actions" }, actions(x)));
  }

  function paint() {
    const rows = [];
    for (const x of data.items) {
      rows.push(row(x));
      if (forms.has(x.id)) rows.push(h("tr", { class: "form-row" }, h("td", { colspan: 8 }, form(x, forms.get(x.id)))));
      if (open.has(x.id)) {
        const cell = h("td", { colspan: 8 }, loading());
        rows.push(h("tr", { class: "trail-row" }, cell));
        trail(x.id, cell);
      }
    }
    const offset = parseInt(q.offset, 10) || 0;
    mount(list,
      h("div", { class: "table-wrap" }, h("table", { class: "table hazards" },
        h("thead", null, h("tr", null, h("th", null, t("hazards.id")), h("th", null, t("hazards.severity")),
          h("th", null, t("hazards.state")), h("th", null, t("col.building")), h("th", null, t("hazards.message")),
          h("th", null, t("hazards.opened")), h("th", null, t("hazards.deadline")), h("th", null, t("hazards.actions")))),
        h("tbody", null, rows))),
      data.items.length ? null : notice(t("hazards.empty")),
      pager({ total: data.total, offset, limit: LIMIT, onPage: (o) => { q.offset = String(o); ctx.setQuery(q); load(); } }));
  }

  async function trail(id, cell) {
    try {
      const d = await api("/api/hazards/" + id + "?lang=" + lang(), { signal: ctx.signal });
      mount(cell, h("div", { class: "trail" },
        h("div", null, h("h3", null, t("hazards.trail")),
          h("ol", { class: "timeline" }, d.transitions.map((tr) =>
            h("li", null, h("span", { class: "muted nowrap" }, fmtTime(tr.at, true)), " ",
              h("strong", null, t("action." + tr.action)), " · ", tr.by, tr.note ? h("div", { class: "note" }, tr.note) : null)))),
        d.notifications?.length ? h("div", null, h("h3", null, t("hazards.notifications")),
          h("ol", { class: "timeline" }, d.notifications.map((n) =>
            h("li", null, h("span", { class: "muted nowrap" }, fmtTime(n.sent_at || n.next_at, true)), " ",
              h("strong", null, t("action." + n.action)), " · ",
              [t("role." + n.role), n.party, n.channel, n.state].filter(Boolean).join(" · "),
              n.last_error ? h("div", { class: "note" }, n.last_error) : null)))) : null));
    } catch (e) {
      if (e.name !== "AbortError") showError(cell, e);
    }
  }

  paintFilters();
  await load();
}
