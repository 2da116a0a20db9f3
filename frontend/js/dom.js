// Tiny DOM helpers: element building (text is always set as text, never as HTML),
// the error banner, and formatting.

/**
 * h("div", {class: "card", onclick: fn}, "text", child, [more, children])
 * Attributes: `class`, `dataset` (object), `style` (string), `on<event>` (listener),
 * boolean `true` sets an empty attribute, `false`/`null`/`undefined` skips it.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key === "style") {
      // through the CSSOM: the pages' Content-Security-Policy refuses style attributes
      el.style.cssText = String(value);
    } else if (key === "value" || key === "checked" || key === "disabled") {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace all children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// ---- Error banner ---------------------------------------------------------------------

function bannerHost() {
  let host = document.getElementById("banners");
  if (!host) {
    host = h("div", { id: "banners", class: "banners" });
    const main = document.getElementById("app");
    main.parentNode.insertBefore(host, main);
  }
  return host;
}

/** Show an error (an Error or a string) in a visible, dismissable banner (role=alert). */
export function showError(error, context = "") {
  const text = (context ? `${context}: ` : "") + messageOf(error);
  console.error(context || "error", error);
  const host = bannerHost();
  for (const existing of host.children) {
    if (existing.dataset.text === text) return existing; // same error twice: show it once
  }
  const banner = h(
    "div",
    { class: "banner", role: "alert", dataset: { text } },
    h("span", { class: "banner-text" }, text),
    h("button", { class: "banner-close", type: "button", "aria-label": "Dismiss", onclick: () => banner.remove() }, "×"),
  );
  host.append(banner);
  return banner;
}

export function clearErrors() {
  document.getElementById("banners")?.replaceChildren();
}

export function messageOf(error) {
  if (error instanceof Error) return error.message || error.name;
  if (typeof error === "string") return error;
  try {
    return JSON.stringify(error);
  } catch {
    return String(error);
  }
}

// ---- Formatting -----------------------------------------------------------------------

export function formatBytes(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return "";
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function formatDate(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
}

export function plural(n, word, many = `${word}s`) {
  return `${n} ${n === 1 ? word : many}`;
}

/** A progress bar: returns {el, set(fraction|null, text)}; null fraction = indeterminate. */
export function progressBar(label) {
  const fill = h("div", { class: "progress-fill" });
  const bar = h("div", { class: "progress", role: "progressbar", "aria-label": label, "aria-valuemin": "0", "aria-valuemax": "100" }, fill);
  const text = h("div", { class: "progress-text" });
  const el = h("div", { class: "progress-wrap" }, bar, text);
  return {
    el,
    set(fraction, message = "") {
      if (fraction === null || fraction === undefined) {
        bar.classList.add("indeterminate");
        bar.removeAttribute("aria-valuenow");
        fill.style.width = "";
      } else {
        const pct = Math.max(0, Math.min(100, fraction * 100));
        bar.classList.remove("indeterminate");
        bar.setAttribute("aria-valuenow", String(Math.round(pct)));
        fill.style.width = `${pct}%`;
      }
      text.textContent = message;
    },
  };
}
