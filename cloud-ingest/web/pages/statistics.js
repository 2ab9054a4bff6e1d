// #/statistics — the monthly table the work plans ask for (汇总表, 整改率)
// per town or community (GET /api/statistics), exported as CSV or XLSX
// (GET /api/statistics/export.csv|.xlsx).

import { h, mount, select } from "../lib/dom.js";
import { t, lang, fmtNum, fmtTime } from "../lib/i18n.js";
import { api } from "../lib/api.js";
import { loading, notice, showError } from "../lib/ui.js";

const COLUMNS = [
  ["in_scope", "stats.inScope"], ["monitored", "stats.monitored"], ["failing_now", "stats.failingNow"],
  ["opened", "stats.opened"], ["rectified", "stats.rectified"], ["found_so_far", "stats.foundSoFar"], ["rectified_so_far", "stats.rectifiedSoFar"],
  ["rate", "stats.rate"], ["overdue", "stats.overdue"],
];

/** This month in China Standard Time, `YYYY-MM`. */
function thisMonth() {
  return new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit" }).format(new Date());
}

/** 整改率 (rectified so far / found so far, 0–1) as a percentage; none found: a dash. */
const fmtRate = (rate) => (typeof rate === "number" ? fmtNum(rate * 100, 1) + "%" : "—");

export async function render(ctx) {
  ctx.setTitle(t("stats.title"));
  const q = { month: thisMonth(), level: "town", ...ctx.query };
  if (!/^\d{4}-\d{2}$/.test(q.month)) q.month = thisMonth();
  if (q.level !== "community") q.level = "town";
  const table = h("div", { id: "stats-table" }, loading());
  const exportLink = (ext, label) => {
    const params = new URLSearchParams({ month: q.month, level: q.level, lang: lang() });
    return h("a", { class: "button", href: "/api/statistics/export." + ext + "?" + params, download: "", id: "export-" + ext }, label);
  };
  const exports = h("div", { class: "exports" });
  const paintExports = () => mount(exports, exportLink("csv", t("stats.exportCsv")), exportLink("xlsx", t("stats.exportXlsx")));
  const change = (key) => (ev) => { q[key] = ev.target.value; ctx.setQuery(q); paintExports(); load(); };

  mount(ctx.root,
    h("div", { class: "page-head" }, h("h1", null, t("stats.title"))),
    h("div", { class: "filters" },
      h("label", { class: "inline" }, t("stats.month") + " ",
        h("input", { type: "month", id: "stats-month", value: q.month, max: thisMonth(), onchange: change("month") })),
      h("label", { class: "inline" }, t("stats.level") + " ",
        select({ id: "stats-level", onchange: change("level") },
          [["town", t("stats.levelTown")], ["community", t("stats.levelCommunity")]], q.level)),
      h("div", { class: "spacer" }),
      exports),
    table);
  paintExports();

  async function load() {
    if (!/^\d{4}-\d{2}$/.test(q.month)) return;
    mount(table, loading());
    try {
      const params = new URLSearchParams({ month: q.month, level: q.level, lang: lang() });
      const out = await api("/api/statistics?" + params, { signal: ctx.signal });
      paint(out);
    } catch (e) {
      if (e.name !== "AbortError") showError(table, e);
    }
  }

  function paint(out) {
    const community = (out.level || q.level) === "community";
    const columns = COLUMNS.filter(([key]) => key !== "found_so_far" || out.total?.found_so_far !== undefined);
    const cells = (r) => columns.map(([key]) =>
      h("td", { class: "num" + (key === "failing_now" && r[key] ? " hot-failing" : key === "overdue" && r[key] ? " hot-warning" : ""),
        "data-col": key }, key === "rate" ? fmtRate(r[key]) : fmtNum(r[key], 0)));
    const rows = (out.rows || []).map((r) =>
      h("tr", null, h("td", null, r.district || "—"), h("td", null, r.town || "—"),
        community ? h("td", null, r.community || "—") : null, cells(r)));
    mount(table,
      h("div", { class: "table-wrap" }, h("table", { class: "table stats" },
        h("thead", null, h("tr", null, h("th", null, t("col.district")), h("th", null, t("col.town")),
          community ? h("th", null, t("col.community")) : null,
          columns.map(([, label]) => h("th", { class: "num" }, t(label))))),
        h("tbody", null, rows),
        out.total ? h("tfoot", null, h("tr", null, h("th", { colspan: community ? 3 : 2 }, t("total")), cells(out.total))) : null)),
      rows.length ? null : notice(t("stats.empty")),
      out.as_of ? h("p", { class: "muted small", id: "stats-as-of" }, t("stats.asOf", { time: fmtTime(out.as_of) })) : null);
  }

  await load();
}
