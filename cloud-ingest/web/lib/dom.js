// DOM helpers. Everything the server sends (building names, addresses,
// remarks, contacts) is untrusted: it only ever reaches the page as text
// (textContent / text nodes) or through attribute setters. Nothing in this
// app parses a string as HTML: tests/browser/run.mjs fails on any HTML
// setter or document writing in these files.

/**
 * Creates an element. `attrs`: `class`, `dataset`, `on…` (functions only),
 * `style` (object), boolean or string attributes; `null`/`false` skip.
 * Children: nodes, strings (as text), arrays, null/false (skipped).
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (key === "class") el.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style") Object.assign(el.style, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "value" || key === "checked" || key === "selected") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child == null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.append(child);
    else el.append(document.createTextNode(String(child)));
  }
}

/** Replaces all children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A `<select>` from `[value, label]` pairs. */
export function select(attrs, options, current) {
  return h(
    "select",
    attrs,
    options.map(([value, label]) => h("option", { value, selected: String(value) === String(current ?? "") }, label)),
  );
}

/** `#/path?query` with the query's empty values left out. */
export function hashHref(path, query = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v != null && v !== "") q.set(k, v);
  const s = q.toString();
  return "#" + path + (s ? "?" + s : "");
}

/** A link to a phone number or e-mail address, when the text is one; else text. */
export function contactNode(text) {
  const s = String(text);
  if (/^\+?[0-9][0-9 \-]{5,20}$/.test(s)) return h("a", { href: "tel:" + s.replace(/[ \-]/g, "") }, s);
  if (/^[^\s@<>"']+@[^\s@<>"']+\.[A-Za-z]{2,}$/.test(s)) return h("a", { href: "mailto:" + s }, s);
  return document.createTextNode(s);
}
