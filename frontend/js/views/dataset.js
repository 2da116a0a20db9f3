// #/datasets/{id} — the thumbnail grid (100 at a time), the upload panel, the verify job and (admins)
// attaching a bucket prefix (bucket-attach.js).

import { get, getPage } from "../api.js";
import { formatBytes, h, mount, plural, showError } from "../dom.js";
import { projectEvents } from "../events.js";
import { remember } from "../imageorder.js";
import { attachPanel } from "./bucket-attach.js";
import { breadcrumbs, isAdmin, section } from "./common.js";
import { uploadPanel } from "./upload.js";
import { verifyPanel } from "./verify.js";

const PAGE = 100;

export async function datasetView(root, { id }, ctx) {
  document.title = "Dataset · Maskwright";
  mount(root, h("p", { class: "muted" }, "Loading dataset…"));
  const dataset = await get(`/api/datasets/${id}/`, { signal: ctx.signal });
  const project = await get(`/api/projects/${dataset.project}/`, { signal: ctx.signal });
  if (!ctx.alive()) return;
  document.title = `${dataset.name} · ${project.name} · Maskwright`;
  const admin = isAdmin(project.role);

  const count = h("span", { class: "count-badge", "aria-label": "Image count" }, plural(dataset.image_count ?? 0, "image"));
  const grid = h("div", { class: "thumb-grid", "aria-label": "Images" });
  const more = h("button", { type: "button", class: "secondary load-more", hidden: true }, "Load more");
  const status = h("p", { class: "muted small grid-status" });
  const state = { loaded: 0, count: 0, loading: false };

  async function loadPage(offset) {
    state.loading = true;
    more.disabled = true;
    try {
      const page = await getPage(`/api/datasets/${id}/images/`, { limit: PAGE, offset, signal: ctx.signal });
      if (!ctx.alive()) return;
      remember(id, offset, page.results, page.count);
      if (offset === 0) grid.replaceChildren();
      grid.append(...page.results.map(thumbCard));
      state.loaded = offset + page.results.length;
      state.count = page.count;
      count.textContent = plural(page.count, "image");
      if (!page.count) mount(grid, emptyGrid(admin, project.role));
      more.hidden = !page.next;
      status.textContent = page.count ? `Showing ${state.loaded} of ${page.count}` : "";
    } finally {
      state.loading = false;
      more.disabled = false;
    }
  }

  more.addEventListener("click", () =>
    loadPage(state.loaded).catch((error) => {
      if (ctx.alive() && error.name !== "AbortError") showError(error, "Could not load more images");
    }),
  );

  const head = h(
    "div",
    { class: "page-head" },
    h("h1", {}, dataset.name),
    count,
  );
  const children = [breadcrumbs([["Projects", "#/"], [project.name, `#/projects/${project.id}`], [dataset.name]]), head];

  let upload = null;
  if (admin) {
    const events = projectEvents(project.id);
    ctx.onCleanup(() => events.close());
    const verify = verifyPanel({ project, dataset, events, ctx });
    head.append(h("div", { class: "head-actions" }, verify.button));
    upload = uploadPanel({
      dataset,
      ctx,
      onDone: () =>
        loadPage(0).catch((error) => {
          if (ctx.alive()) showError(error, "Could not refresh the images");
        }),
    });
    children.push(verify.el, section("Upload", upload.el, null, "upload-section"));
    const refresh = () => loadPage(0).catch((error) => ctx.alive() && showError(error, "Could not refresh the images"));
    children.push(attachPanel({ project, dataset, ctx, onDone: refresh }));
    installPageDrop(root, upload, ctx);
  }
  children.push(section("Images", h("div", {}, grid, h("div", { class: "grid-foot" }, status, more)), null, "images-section"));
  mount(root, children);
  await loadPage(0);
}

function thumbCard(image) {
  // the name is shown; the path it was uploaded under (inside a zip) is in the tooltip
  const path = image.source_path && image.source_path !== image.original_name ? image.source_path : "";
  const img = h("img", { loading: "lazy", src: image.thumbnail_url, alt: image.original_name, decoding: "async" });
  const box = h("div", { class: "thumb-box" }, img);
  img.addEventListener("error", () => {
    box.classList.add("thumb-missing");
    box.title = "Thumbnail missing — run “Verify dataset” to rebuild it";
  });
  return h(
    "a",
    { class: "thumb-card", href: `#/images/${image.id}`, dataset: { imageId: image.id, sourcePath: path }, title: path ? `${image.original_name} — ${path}` : image.original_name },
    box,
    h("div", { class: "thumb-name" }, image.original_name),
    h("div", { class: "thumb-meta" }, `${image.width}×${image.height} · ${formatBytes(image.size_bytes)}`),
  );
}

function emptyGrid(admin, role) {
  if (admin) return h("div", { class: "empty drop-hint" }, "No images yet — drop images or a zip here");
  if (role === "annotator") return h("div", { class: "empty" }, "No images assigned to you in this dataset yet — ask a manager for a task.");
  return h("div", { class: "empty" }, "No images yet — a project owner or manager can upload some.");
}

/** Files dropped anywhere on the page go to the upload panel (never opened by the browser). */
function installPageDrop(root, upload, ctx) {
  let depth = 0;
  const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes("Files");
  const onEnter = (e) => {
    if (!hasFiles(e)) return;
    depth += 1;
    root.classList.add("dragging");
  };
  const onLeave = () => {
    depth = Math.max(0, depth - 1);
    if (!depth) root.classList.remove("dragging");
  };
  const onOver = (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "copy";
  };
  const onDrop = (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth = 0;
    root.classList.remove("dragging");
    upload.addFiles([...e.dataTransfer.files]);
  };
  window.addEventListener("dragenter", onEnter);
  window.addEventListener("dragleave", onLeave);
  window.addEventListener("dragover", onOver);
  window.addEventListener("drop", onDrop);
  ctx.onCleanup(() => {
    window.removeEventListener("dragenter", onEnter);
    window.removeEventListener("dragleave", onLeave);
    window.removeEventListener("dragover", onOver);
    window.removeEventListener("drop", onDrop);
    root.classList.remove("dragging");
  });
}
