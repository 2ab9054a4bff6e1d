// Small pieces shared by the pages: badges, notices, a pager, sortable headers.

import { h, mount } from "./dom.js";
import { t } from "./i18n.js";

export const STATUSES = ["failing", "warning", "unknown", "ok"];
export const statusRank = (s) => { const i = STATUSES.indexOf(s); return i < 0 ? STATUSES.length : i; };

export const statusBadge = (status) =>
  h("span", { class: "badge status-" + (STATUSES.includes(status) ? status : "unknown"), "data-status": status },
    t("status." + status));

export const severityBadge = (severity) =>
  h("span", { class: "badge severity-" + severity }, t("severity." + severity));

export const stateBadge = (state) => h("span", { class: "badge state-" + state, "data-state": state }, t("state." + state));

export const notice = (text, kind = "info") => h("div", { class: "notice " + kind }, text);

export const loading = () => h("div", { class: "loading" }, t("loading"));

/** A page-wide error: 403 says so plainly, others show the server's message. */
export function showError(root, e) {
  mount(root, notice(e.status === 403 ? t("forbidden") : t("error", { error: e.message }), "error"));
}

/** A message at the bottom of the screen for a few seconds. */
export function toast(text, kind = "ok") {
  const el = h("div", { class: "toast " + kind, role: "status" }, text);
  document.body.append(el);
  setTimeout(() => el.remove(), 3500);
}

/** Prev / next and "x–y of n". `onPage(offset)`. */
export function pager({ total, offset, limit, onPage }) {
  const from = total === 0 ? 0 : offset + 1;
  const to = Math.min(offset + limit, total);
  return h("div", { class: "pager" },
    h("span", { class: "muted", "data-total": total }, t("pageInfo", { from, to, total })),
    h("button", { type: "button", class: "ghost", disabled: offset <= 0, onclick: () => onPage(Math.max(0, offset - limit)) },
      "‹ " + t("prev")),
    h("button", { type: "button", class: "ghost", disabled: to >= total, onclick: () => onPage(offset + limit) },
      t("next") + " ›"));
}

/**
 * A header cell that sorts by `key` on click: `sort` is `key` or `-key`
 * (descending); `onSort(newSort)`.
 */
export function sortTh(label, key, sort, onSort, attrs = {}) {
  const active = sort === key || sort === "-" + key;
  const desc = sort === "-" + key;
  return h("th", { ...attrs, class: ["sortable", active && "sorted", attrs.class],
    "aria-sort": active ? (desc ? "descending" : "ascending") : "none" },
    h("button", { type: "button", onclick: () => onSort(active && !desc ? "-" + key : key) },
      label, h("span", { class: "arrow", "aria-hidden": "true" }, active ? (desc ? "▼" : "▲") : "↕")));
}

/** A titled panel. */
export const panel = (title, ...children) =>
  h("section", { class: "panel" }, title ? h("h2", null, title) : null, ...children);

/** `label: value` rows. */
export const facts = (pairs) =>
  h("dl", { class: "facts" }, pairs.filter(Boolean).map(([k, v]) => [h("dt", null, k), h("dd", null, v)]));
