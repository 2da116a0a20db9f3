// Hash router: "#/projects/3" -> the matching view. A view gets a context whose `alive()`
// turns false once the user navigates away (late answers are then dropped) and whose
// `onCleanup(fn)` registers teardown (listeners, sockets, timers).

import { clearErrors, h, mount, showError } from "./dom.js";

export class Router {
  constructor(root) {
    this.root = root;
    this.routes = [];
    this.current = null;
    window.addEventListener("hashchange", () => this.resolve());
  }

  /** pattern: "/projects/:id"; `name` is set as data-view on the root (for layout CSS). */
  add(pattern, view, name = "") {
    const names = [];
    const source = pattern.replace(/:(\w+)/g, (_, name) => {
      names.push(name);
      return "(\\d+)";
    });
    this.routes.push({ regex: new RegExp(`^${source}/?$`), names, view, name });
    return this;
  }

  start() {
    this.resolve();
  }

  path() {
    const raw = location.hash.replace(/^#/, "");
    return raw.startsWith("/") ? raw : `/${raw}`;
  }

  resolve() {
    this.teardown();
    clearErrors();
    const path = this.path();
    const ctx = this.makeContext();
    this.current = ctx;
    for (const route of this.routes) {
      const match = route.regex.exec(path);
      if (!match) continue;
      const params = {};
      route.names.forEach((name, i) => {
        params[name] = Number(match[i + 1]);
      });
      this.root.replaceChildren();
      this.root.dataset.view = route.name;
      window.scrollTo(0, 0);
      Promise.resolve()
        .then(() => route.view(this.root, params, ctx))
        .catch((error) => {
          if (ctx.alive() && error?.name !== "AbortError") showError(error);
        });
      return;
    }
    document.title = "Not found · Maskwright";
    this.root.dataset.view = "not-found";
    mount(
      this.root,
      h("section", { class: "empty-page" }, h("h1", {}, "Page not found"), h("p", {}, "Nothing lives at ", h("code", {}, `#${path}`), ". ", h("a", { href: "#/" }, "Back to the projects"), ".")),
    );
  }

  makeContext() {
    const cleanups = [];
    const controller = new AbortController();
    let alive = true;
    return {
      signal: controller.signal,
      alive: () => alive,
      onCleanup: (fn) => cleanups.push(fn),
      dispose: () => {
        alive = false;
        controller.abort();
        for (const fn of cleanups.reverse()) {
          try {
            fn();
          } catch (error) {
            console.error("cleanup failed", error);
          }
        }
      },
    };
  }

  teardown() {
    if (this.current) this.current.dispose();
    this.current = null;
  }
}

export function navigate(hash) {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = hash;
}
