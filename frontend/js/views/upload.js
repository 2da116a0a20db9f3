// The upload panel: a drop zone and file picker (images and zips), an optional COCO json,
// an XMLHttpRequest upload with a real bytes-sent progress bar, then the server's report.
// When the upload carries a COCO json (chosen, or inside a zip) its categories are read first
// (the preview API) and each gets a select: a label of its name (default), an existing label,
// or drop; the choices travel with the upload as `category_map`.

import { upload } from "../api.js";
import { formatBytes, h, mount, plural, progressBar, showError } from "../dom.js";
import { forget } from "../imageorder.js";
import { mappingTable, previewForm, remember, remembered } from "./cocomap.js";

const ACCEPT = "image/jpeg,image/png,image/bmp,image/tiff,image/webp,.jpg,.jpeg,.png,.bmp,.tif,.tiff,.webp,.zip,application/zip";
const SHOW_NAMES = 8;

export function uploadPanel({ dataset, ctx, onDone }) {
  let files = [];
  let coco = null;
  let busy = false;
  let categories = null; // the preview: {categories, labels} of the upload's COCO json, or null
  let choices = new Map(); // category id (a string) -> "new" | "drop" | label id
  let previewing = null; // the preview request in flight, if any
  let previewSeq = 0;
  let previewed = ""; // which json the shown categories come from (see sourceKey)

  const fileInput = h("input", { type: "file", multiple: true, accept: ACCEPT, class: "visually-hidden", id: "upload-files", name: "files" });
  const cocoInput = h("input", { type: "file", accept: ".json,application/json", class: "visually-hidden", id: "upload-coco", name: "coco" });
  const staged = h("div", { class: "staged" });
  const cocoName = h("span", { class: "muted small" }, "none");
  const cocoClear = h("button", { type: "button", class: "link", hidden: true }, "remove");
  const go = h("button", { type: "button", class: "primary", disabled: true }, "Upload");
  const clear = h("button", { type: "button", class: "secondary", hidden: true }, "Clear");
  const progress = progressBar("Upload progress");
  progress.el.hidden = true;
  const report = h("div", { class: "upload-report", "aria-live": "polite" });
  const mapping = h("div", { class: "category-map" });

  const zone = h(
    "div",
    { class: "dropzone", tabindex: "0", role: "button", "aria-label": "Drop images or zip archives here, or press Enter to choose files" },
    h("div", { class: "dropzone-icon", "aria-hidden": "true" }, "⇪"),
    h("div", {}, h("strong", {}, "Drop images or .zip archives here"), " or ", h("label", { for: "upload-files", class: "link-like" }, "choose files")),
    h("div", { class: "muted small" }, "JPEG, PNG, BMP, TIFF, WebP, or zip archives of them"),
    fileInput,
  );

  const el = h(
    "div",
    { class: "upload-panel" },
    zone,
    h(
      "div",
      { class: "upload-side" },
      staged,
      h(
        "div",
        { class: "coco-row" },
        h("span", {}, "COCO annotations (optional): "),
        cocoName,
        " ",
        cocoClear,
        " ",
        h("label", { for: "upload-coco", class: "button secondary small-button" }, "Choose COCO json…"),
        cocoInput,
      ),
      mapping,
      h("div", { class: "button-row" }, go, clear),
      progress.el,
      report,
    ),
  );

  function addFiles(list) {
    if (busy) return;
    for (const file of list) {
      if (/\.json$/i.test(file.name)) coco = file; // a dropped json is the COCO file
      else if (!files.some((f) => f.name === file.name && f.size === file.size && f.lastModified === file.lastModified)) files.push(file);
    }
    render();
    preview();
  }

  function render() {
    const total = files.reduce((sum, f) => sum + f.size, 0);
    if (!files.length) {
      mount(staged, h("p", { class: "muted" }, "No files chosen yet."));
    } else {
      const names = files.slice(0, SHOW_NAMES).map((f) => h("li", {}, h("span", { class: "file-name" }, f.name), h("span", { class: "muted small" }, formatBytes(f.size))));
      if (files.length > SHOW_NAMES) names.push(h("li", { class: "muted" }, `… and ${files.length - SHOW_NAMES} more`));
      mount(staged, h("p", {}, h("strong", {}, plural(files.length, "file")), ` ready · ${formatBytes(total)}`), h("ul", { class: "file-list" }, names));
    }
    cocoName.textContent = coco ? `${coco.name} (${formatBytes(coco.size)})` : "none";
    cocoClear.hidden = !coco;
    go.disabled = busy || Boolean(previewing) || (!files.length && !coco);
    go.textContent = files.length ? `Upload ${plural(files.length, "file")}` : coco ? "Import COCO json" : "Upload";
    clear.hidden = busy || (!files.length && !coco);
  }

  fileInput.addEventListener("change", () => {
    addFiles([...fileInput.files]);
    fileInput.value = "";
  });
  cocoInput.addEventListener("change", () => {
    coco = cocoInput.files[0] || null;
    cocoInput.value = "";
    render();
    preview();
  });
  cocoClear.addEventListener("click", () => {
    coco = null;
    render();
    preview();
  });
  clear.addEventListener("click", () => {
    files = [];
    coco = null;
    render();
    preview();
  });
  zone.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      fileInput.click();
    }
  });
  zone.addEventListener("click", (e) => {
    if (!busy && !e.target.closest("label, input")) fileInput.click(); // the label opens it itself
  });
  go.addEventListener("click", () => start());

  async function start() {
    if (busy || (!files.length && !coco)) return;
    const form = new FormData();
    for (const file of files) form.append("files", file, file.name);
    if (coco) form.append("coco", coco, coco.name);
    if (categories?.categories.length) form.append("category_map", JSON.stringify(Object.fromEntries(choices)));
    const sending = files.length;
    busy = true;
    render();
    report.replaceChildren();
    progress.el.hidden = false;
    progress.set(0, "Starting upload…");
    const warn = (e) => {
      e.preventDefault();
      e.returnValue = "";
    };
    window.addEventListener("beforeunload", warn);
    const job = upload(`/api/datasets/${dataset.id}/upload/`, form, {
      onProgress: (loaded, total) => {
        if (total) progress.set(loaded / total, `Uploading ${formatBytes(loaded)} of ${formatBytes(total)} (${Math.floor((loaded / total) * 100)}%)`);
        else progress.set(null, `Uploading ${formatBytes(loaded)}…`);
      },
      onUploaded: () => progress.set(null, `Processing on the server — checking and thumbnailing ${plural(sending, "file")}…`),
    });
    ctx.onCleanup(() => window.removeEventListener("beforeunload", warn));
    try {
      const result = await job.promise;
      files = [];
      coco = null;
      if (categories) remember(dataset.project, categories, choices);
      categories = null;
      previewed = "";
      mapping.replaceChildren();
      progress.el.hidden = true;
      mount(report, renderReport(result));
      forget(dataset.id);
      onDone(result);
    } catch (error) {
      progress.el.hidden = true;
      if (ctx.alive()) {
        showError(error, "Upload failed");
        mount(report, h("div", { class: "report-error" }, h("strong", {}, "Nothing was stored. "), error.message));
      }
    } finally {
      window.removeEventListener("beforeunload", warn);
      busy = false;
      render();
    }
  }

  /** Read the categories of the COCO json this upload carries, and show a select for each. */
  async function preview() {
    const zips = files.filter((f) => /\.zip$/i.test(f.name));
    const key = sourceKey(coco, zips);
    if (key === previewed) return; // e.g. an image added: keep the choices made
    previewed = key;
    const seq = ++previewSeq;
    categories = null;
    choices = new Map();
    if (!coco && !zips.length) {
      previewing = null;
      mapping.replaceChildren();
      render();
      return;
    }
    mount(mapping, h("p", { class: "muted small" }, "Reading the COCO categories…"));
    const task = (async () => {
      const form = await previewForm(coco, zips);
      if (!form) return null;
      return upload(`/api/datasets/${dataset.id}/upload/preview/`, form).promise;
    })();
    previewing = task;
    render();
    try {
      const result = await task;
      if (seq !== previewSeq || !ctx.alive()) return;
      categories = result?.categories.length ? result : null;
      if (categories) mount(mapping, mappingTable(categories, choices, remembered(dataset.project)));
      else mapping.replaceChildren();
    } catch (error) {
      if (seq !== previewSeq || !ctx.alive()) return;
      // not a banner: the upload reports the same error, if it is made
      mount(mapping, h("p", { class: "preview-error small" }, "Could not read the COCO categories: ", error.message));
    } finally {
      if (seq === previewSeq) {
        previewing = null;
        render();
      }
    }
  }

  render();
  return { el, addFiles };
}

/** What the preview reads: the chosen json, else the zips (by name, size and date). */
function sourceKey(coco, zips) {
  const id = (f) => `${f.name}:${f.size}:${f.lastModified}`;
  return coco ? `coco ${id(coco)}` : zips.map(id).join("|");
}

function renderReport(result) {
  const refused = (result.files || []).filter((f) => f.status === "refused" && !f.duplicate);
  const duplicates = (result.files || []).filter((f) => f.duplicate);
  const parts = [
    h(
      "div",
      { class: "report-counts" },
      h("span", { class: "count-ok", dataset: { count: result.accepted } }, `${result.accepted} accepted`),
      h("span", { class: refused.length ? "count-bad" : "count-zero", dataset: { count: refused.length } }, `${refused.length} refused`),
      duplicates.length ? h("span", { class: "count-zero count-duplicates", dataset: { count: duplicates.length } }, `${duplicates.length} already in the dataset`) : null,
    ),
  ];
  if (refused.length) {
    parts.push(
      h(
        "table",
        { class: "table refused-table", "aria-label": "Refused files" },
        h("thead", {}, h("tr", {}, h("th", {}, "Refused file"), h("th", {}, "Reason"))),
        h("tbody", {}, refused.map((f) => h("tr", { class: "refused" }, h("td", { class: "file-name" }, f.name || "(archive)"), h("td", { class: "reason" }, f.reason)))),
      ),
    );
  }
  if (duplicates.length) {
    parts.push(
      h(
        "details",
        { class: "duplicates" },
        h("summary", {}, `${plural(duplicates.length, "file")} already in the dataset (same bytes): not stored again`),
        h("ul", { class: "file-list" }, duplicates.slice(0, 200).map((f) => h("li", {}, h("span", { class: "file-name" }, f.name), h("span", { class: "muted small" }, ` image ${f.image_id}`)))),
      ),
    );
  }
  if (result.coco) parts.push(cocoSummary(result.coco));
  return h("div", { class: "report", dataset: { accepted: result.accepted, refused: result.refused, duplicates: result.duplicates ?? 0 } }, parts);
}

function cocoSummary(coco) {
  const warnings = coco.warnings || [];
  return h(
    "div",
    { class: "coco-summary" },
    h("h3", {}, "COCO import"),
    h(
      "p",
      { class: "coco-counts" },
      `${plural(coco.instances_created, "mask")} created · ${coco.duplicates_skipped ?? 0} already there · ${coco.dropped ?? 0} dropped · ${plural(coco.annotations_skipped, "annotation")} skipped · ${coco.crowd_skipped} crowd skipped`,
    ),
    coco.labels?.length ? h("p", { class: "small" }, "Labels: ", coco.labels.join(", ")) : null,
    h("p", { class: "small new-labels" }, coco.labels_created?.length ? `New labels: ${coco.labels_created.join(", ")}` : "No new labels"),
    coco.categories_dropped?.length ? h("p", { class: "small dropped-categories" }, "Dropped categories: ", coco.categories_dropped.join(", ")) : null,
    warnings.length
      ? h("details", {}, h("summary", {}, plural(warnings.length, "warning")), h("ul", { class: "warnings" }, warnings.map((w) => h("li", {}, typeof w === "string" ? w : JSON.stringify(w)))))
      : null,
  );
}
