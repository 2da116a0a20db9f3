// Small pieces of the annotate page's frame: the connection status, the flash line, the
// image loader and the page shown when a task or image cannot be annotated.

import { h, mount } from "../dom.js";

const STATUS_TEXTS = {
  open: (pingMs) => `Connected${pingMs !== null ? ` · ping ${pingMs} ms` : ""}`,
  retrying: (_, retryIn) => `Disconnected, retrying in ${retryIn} s`,
  closed: () => "Closed",
  denied: () => "Signed out or not allowed",
  connecting: () => "Connecting…",
};

/** The socket's state in the tool bar, with "retry now" while it waits to reconnect. */
export function statusLine(reconnect) {
  const text = h("span", { class: "status-text" }, "Connecting…");
  const retryNow = h("button", { type: "button", class: "link small", hidden: true, onclick: reconnect }, "retry now");
  const el = h("span", { class: "annotate-status", role: "status", dataset: { status: "connecting" } }, h("span", { class: "status-dot", "aria-hidden": "true" }), text, retryNow);
  return {
    el,
    set({ state, retryIn, pingMs }) {
      el.dataset.status = state;
      retryNow.hidden = state !== "retrying";
      text.textContent = STATUS_TEXTS[state]?.(pingMs, retryIn) ?? state;
    },
  };
}

/** A line of short-lived news ("Saved · 3 objects"), cleared after a few seconds. */
export function flashLine() {
  const el = h("p", { class: "annotate-flash small", "aria-live": "polite" }, "");
  let timer = null;
  return {
    el,
    show(text) {
      el.textContent = text;
      clearTimeout(timer);
      timer = setTimeout(() => (el.textContent = ""), 4000);
    },
    stop: () => clearTimeout(timer),
  };
}

/** The image file decoded once, up front (an ImageBitmap where the browser has them): no
 * decode stalls while panning a 12 MP image. Rejects when the file cannot be loaded. */
export async function loadBitmap(url) {
  const image = new Image();
  image.src = url;
  await image.decode();
  return typeof createImageBitmap === "function" ? createImageBitmap(image).catch(() => image) : image;
}

export function notFound(root, text, link = null) {
  mount(
    root,
    h(
      "section",
      { class: "empty-page annotate-missing" },
      h("h1", {}, "Cannot annotate"),
      h("p", {}, text, " ", link ? h("a", { href: link }, "Open the task's first image") : null, link ? " · " : "", h("a", { href: "#/" }, "Back to your projects"), "."),
    ),
  );
}
