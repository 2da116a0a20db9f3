// The upload panel: a drop zone and file picker (images and zips), an optional COCO json,
// an XMLHttpRequest upload with a real bytes-sent progress bar, then the server's report.

import { upload } from "../api.js";
import { formatBytes, h, mount, plural, progressBar, showError } from "../dom.js";
import { forget } from "../imageorder.js";

const ACCEPT = "image/jpeg,image/png,image/bmp,image/tiff,image/webp,.jpg,.jpeg,.png,.bmp,.tif,.tiff,.webp,.zip,application/zip";
const SHOW_NAMES = 8;

export function uploadPanel({ dataset, ctx, onDone }) {
  let files = [];
  let coco = null;
  let busy = false;

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
    go.disabled = busy || (!files.length && !coco);
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
  });
  cocoClear.addEventListener("click", () => {
    coco = null;
    render();
  });
  clear.addEventListener("click", () => {
    files = [];
    coco = null;
    render();
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

  render();
  return { el, addFiles };
}

function renderReport(result) {
  const refused = (result.files || []).filter((f) => f.status === "refused");
  const parts = [
    h(
      "div",
      { class: "report-counts" },
      h("span", { class: "count-ok", dataset: { count: result.accepted } }, `${result.accepted} accepted`),
      h("span", { class: result.refused ? "count-bad" : "count-zero", dataset: { count: result.refused } }, `${result.refused} refused`),
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
  if (result.coco) parts.push(cocoSummary(result.coco));
  return h("div", { class: "report", dataset: { accepted: result.accepted, refused: result.refused } }, parts);
}

function cocoSummary(coco) {
  const warnings = coco.warnings || [];
  return h(
    "div",
    { class: "coco-summary" },
    h("h3", {}, "COCO import"),
    h(
      "p",
      {},
      `${plural(coco.instances_created, "mask")} created · ${plural(coco.annotations_skipped, "annotation")} skipped · ${coco.crowd_skipped} crowd skipped`,
    ),
    coco.labels?.length ? h("p", { class: "small" }, "Labels: ", coco.labels.join(", ")) : null,
    warnings.length
      ? h("details", {}, h("summary", {}, plural(warnings.length, "warning")), h("ul", { class: "warnings" }, warnings.map((w) => h("li", {}, typeof w === "string" ? w : JSON.stringify(w)))))
      : null,
  );
}
