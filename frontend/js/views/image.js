// #/images/{id} — the image on a <canvas> with its stored masks drawn over it.
// Keys: Esc back to the dataset, ←/→ previous/next image of the dataset.

import { get, getPage } from "../api.js";
import { formatBytes, h, mount, showError } from "../dom.js";
import { projectEvents } from "../events.js";
import { locate } from "../imageorder.js";
import { paintOverlay } from "../overlay.js";
import { navigate } from "../router.js";
import { breadcrumbs, hexToRgb } from "./common.js";
import { instanceList } from "./image-panel.js";

const NO_LABEL = [160, 160, 160];

export async function imageView(root, { id }, ctx) {
  document.title = "Image · Maskwright";
  mount(root, h("p", { class: "muted" }, "Loading image…"));
  // The last Esc / ← / → pressed while the view is still loading (the dataset and the
  // neighbours are not known yet) is handed to the key handler once it exists, which filters
  // it as it does any key; flipping through images stays smooth.
  let earlyKey = null;
  const onEarlyKey = (e) => {
    if (["Escape", "ArrowLeft", "ArrowRight"].includes(e.key)) earlyKey = e;
  };
  window.addEventListener("keydown", onEarlyKey);
  ctx.onCleanup(() => window.removeEventListener("keydown", onEarlyKey));
  const image = await get(`/api/images/${id}/`, { signal: ctx.signal });
  const dataset = await get(`/api/datasets/${image.dataset}/`, { signal: ctx.signal });
  const project = await get(`/api/projects/${dataset.project}/`, { signal: ctx.signal });
  if (!ctx.alive()) return;
  document.title = `${image.original_name} · ${dataset.name} · Maskwright`;
  const labels = new Map((project.labels || []).map((l) => [l.id, l]));
  const view = { instances: [], hidden: new Set(), show: true, opacity: 0.45, bitmap: null, nav: null };

  const canvas = h("canvas", { class: "image-canvas", width: image.width, height: image.height, dataset: { state: "loading" }, "aria-label": `Image ${image.original_name} with its masks` });
  const stage = h("div", { class: "stage" }, canvas);
  const position = h("span", { class: "muted position" }, "");
  const prev = h("button", { type: "button", class: "secondary", disabled: true, title: "Previous image (←)", onclick: () => go(view.nav?.prev) }, "← Prev");
  const next = h("button", { type: "button", class: "secondary", disabled: true, title: "Next image (→)", onclick: () => go(view.nav?.next) }, "Next →");
  const toggle = h("input", { type: "checkbox", checked: true, id: "show-masks" });
  const opacity = h("input", { type: "range", min: "0.1", max: "0.9", step: "0.05", value: String(view.opacity), "aria-label": "Mask opacity", title: "Mask opacity" });
  const listBody = h("div", {}, h("p", { class: "muted" }, "Loading masks…"));

  mount(
    root,
    h(
      "div",
      { class: "image-toolbar" },
      breadcrumbs([["Projects", "#/"], [project.name, `#/projects/${project.id}`], [dataset.name, `#/datasets/${dataset.id}`], [image.original_name]]),
      h("div", { class: "spacer" }),
      h("label", { class: "check", for: "show-masks" }, toggle, " Masks"),
      opacity,
      prev,
      position,
      next,
    ),
    h(
      "div",
      { class: "image-layout" },
      stage,
      h(
        "aside",
        { class: "image-side", "aria-label": "Image details" },
        h("h2", {}, "Image"),
        h(
          "dl",
          { class: "facts" },
          h("dt", {}, "Size"),
          h("dd", {}, `${image.width} × ${image.height} px`),
          h("dt", {}, "File"),
          h("dd", {}, `${image.format} · ${formatBytes(image.size_bytes)}`),
        ),
        h("h2", {}, "Masks"),
        listBody,
        h("p", { class: "muted small keys" }, h("kbd", {}, "Esc"), " dataset · ", h("kbd", {}, "←"), " ", h("kbd", {}, "→"), " previous / next"),
      ),
    ),
  );

  const colorOf = (inst) => (inst.label && labels.has(inst.label) ? hexToRgb(labels.get(inst.label).color) : NO_LABEL);

  function draw() {
    if (!view.bitmap) return;
    const g = canvas.getContext("2d");
    g.clearRect(0, 0, canvas.width, canvas.height);
    g.drawImage(view.bitmap, 0, 0, canvas.width, canvas.height);
    if (view.show) {
      const visible = view.instances.filter((inst) => !view.hidden.has(inst.id)).sort((a, b) => a.z_order - b.z_order || a.id - b.id);
      if (visible.length) {
        const { data, errors } = paintOverlay(visible, image.width, image.height, colorOf, view.opacity);
        const layer = document.createElement("canvas");
        layer.width = image.width;
        layer.height = image.height;
        layer.getContext("2d").putImageData(data, 0, 0);
        g.drawImage(layer, 0, 0);
        for (const { instance, error } of errors) showError(error, `Mask ${instance.id} cannot be drawn`);
      }
    }
  }

  function fit() {
    const box = stage.getBoundingClientRect();
    if (!box.width || !box.height) return;
    const scale = Math.min((box.width - 16) / image.width, (box.height - 16) / image.height, 8);
    canvas.style.width = `${Math.max(1, Math.floor(image.width * scale))}px`;
    canvas.style.height = `${Math.max(1, Math.floor(image.height * scale))}px`;
    canvas.style.imageRendering = scale >= 2 ? "pixelated" : "auto"; // show real pixels when zoomed
  }
  const observer = new ResizeObserver(fit);
  observer.observe(stage);
  ctx.onCleanup(() => observer.disconnect());
  fit();

  async function loadInstances() {
    const all = [];
    let offset = 0;
    for (;;) {
      const page = await getPage(`/api/images/${id}/instances/`, { limit: 1000, offset, signal: ctx.signal });
      all.push(...page.results);
      offset += page.results.length;
      if (!page.next || !page.results.length) break;
    }
    if (!ctx.alive()) return;
    view.instances = all;
    instanceList(listBody, all, labels, view.hidden, () => draw());
    draw();
  }

  const navigation = locate(dataset.id, id, ctx.signal).then((nav) => {
    if (!ctx.alive()) return nav;
    view.nav = nav;
    position.textContent = nav.index >= 0 ? `${nav.index + 1} / ${nav.count}` : "";
    prev.disabled = !nav.prev;
    next.disabled = !nav.next;
    for (const neighbour of [nav.next, nav.prev]) if (neighbour) new Image().src = `/api/images/${neighbour}/file`; // warm the cache
    return nav;
  });
  navigation.catch((error) => ctx.alive() && error.name !== "AbortError" && showError(error, "Could not find the neighbouring images"));

  function go(target) {
    if (target) navigate(`#/images/${target}`);
  }

  const onKey = (e) => {
    if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey) return;
    const tag = e.target?.tagName;
    if (tag === "SELECT" || tag === "TEXTAREA" || (tag === "INPUT" && e.target.type !== "checkbox")) {
      if (e.key === "Escape") e.target.blur();
      return;
    }
    if (e.key === "Escape") {
      e.preventDefault();
      navigate(`#/datasets/${dataset.id}`);
    } else if (e.key === "ArrowLeft" || e.key === "ArrowRight") {
      e.preventDefault();
      // Before the neighbours are known the key waits for them instead of being lost.
      navigation.then((nav) => ctx.alive() && go(e.key === "ArrowLeft" ? nav?.prev : nav?.next), () => {});
    }
  };
  window.addEventListener("keydown", onKey);
  ctx.onCleanup(() => window.removeEventListener("keydown", onKey));
  window.removeEventListener("keydown", onEarlyKey);
  if (earlyKey) onKey(earlyKey);

  toggle.addEventListener("change", () => {
    view.show = toggle.checked;
    draw();
  });
  opacity.addEventListener("input", () => {
    view.opacity = Number(opacity.value);
    draw();
  });

  // Masks changed by someone else (or by a model) show up without a reload.
  const events = projectEvents(project.id);
  ctx.onCleanup(() => events.close());
  let reload = null;
  events.on("*", (payload, event) => {
    if (!event.startsWith("instance.") || payload.image_id !== id) return;
    clearTimeout(reload);
    reload = setTimeout(() => loadInstances().catch((error) => ctx.alive() && error.name !== "AbortError" && showError(error, "Could not reload the masks")), 200);
  });
  ctx.onCleanup(() => clearTimeout(reload));

  const bitmap = new Image();
  bitmap.src = image.file_url;
  const loaded = bitmap.decode().then(
    () => {
      view.bitmap = bitmap;
    },
    () => {
      throw new Error(`The image file could not be loaded (${image.file_url}); a verify job on the dataset can tell why`);
    },
  );

  const [bitmapResult, instancesResult] = await Promise.allSettled([loaded, loadInstances()]);
  if (!ctx.alive()) return;
  if (bitmapResult.status === "rejected") showError(bitmapResult.reason);
  if (instancesResult.status === "rejected") {
    showError(instancesResult.reason, "Could not load the masks");
    mount(listBody, h("p", { class: "error-text" }, "The masks could not be loaded."));
  }
  draw();
  canvas.dataset.state = bitmapResult.status === "fulfilled" && instancesResult.status === "fulfilled" ? "ready" : "error";
}
