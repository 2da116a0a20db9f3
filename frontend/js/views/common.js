// Small pieces shared by the views.

import { h } from "../dom.js";

export const ADMIN_ROLES = new Set(["owner", "manager"]);
export const ROLES = ["owner", "manager", "annotator", "reviewer"];
export const isAdmin = (role) => ADMIN_ROLES.has(role);

/** "#1f77b4" -> [31, 119, 180]; anything unparsable gives a neutral grey. */
export function hexToRgb(color) {
  const m = /^#?([0-9a-f]{6})$/i.exec(color || "");
  if (!m) return [128, 128, 128];
  const n = parseInt(m[1], 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** Black or white, whichever reads better on `color`. */
export function inkFor(color) {
  const [r, g, b] = hexToRgb(color);
  return 0.299 * r + 0.587 * g + 0.114 * b > 150 ? "#1b1f24" : "#ffffff";
}

export function safeColor(color) {
  return /^#[0-9a-f]{6}$/i.test(color || "") ? color : "#888888";
}

export function labelChip(label, extra = null) {
  const color = safeColor(label.color);
  return h(
    "span",
    { class: "chip", style: `background:${color};color:${inkFor(color)}`, title: `${label.name} (${label.color})`, dataset: { labelId: label.id } },
    label.name,
    extra,
  );
}

export function roleBadge(role) {
  return h("span", { class: `role role-${role || "none"}`, title: "Your role in this project" }, role || "no role");
}

export function stateBadge(state) {
  return h("span", { class: `state state-${String(state).replace(/[^a-z_]/gi, "")}` }, String(state).replace(/_/g, " "));
}

/** crumbs: [[text, href], ..., [text]] */
export function breadcrumbs(crumbs) {
  const items = [];
  crumbs.forEach(([text, href], i) => {
    if (i) items.push(h("span", { class: "crumb-sep", "aria-hidden": "true" }, "/"));
    items.push(href ? h("a", { href }, text) : h("span", { "aria-current": "page" }, text));
  });
  return h("nav", { class: "breadcrumbs", "aria-label": "Breadcrumbs" }, items);
}

/** A titled section of a page with an optional element on the right of its heading. */
export function section(title, body, aside = null, cls = "") {
  return h("section", { class: `panel ${cls}`.trim(), "aria-label": title }, h("div", { class: "panel-head" }, h("h2", {}, title), aside), body);
}
