// The parts of the Jobs page that follow the server's job kinds (GET /api/jobs/kinds/): a launch
// form field per declared parameter, the values to launch with, and what a finished job's result
// says, by the capability of its kind. The server checks every value again at launch.

import { h, plural } from "../dom.js";

export function field(label, input, hint = "") {
  return h("label", { class: "job-field", title: hint || null }, h("span", { class: "small muted" }, label), input);
}

// ---- Parameter fields -------------------------------------------------------------------------

function numberInput(param) {
  // step null: any float, or whole numbers for an int (the browser then refuses 2.5)
  const step = param.step ?? (param.kind === "float" ? "any" : "1");
  return h("input", {
    name: param.name, type: "number", "aria-label": param.label, step: String(step),
    min: param.min ?? null, max: param.max ?? null, value: param.default === null ? "" : String(param.default),
  });
}

function select(param, options) {
  const selected = String(param.default ?? "");
  return h("select", { name: param.name, "aria-label": param.label },
    options.map(([value, text]) => h("option", { value, selected: String(value) === selected }, text)));
}

// The "none" option the server declares first, then the project's own labels or models: those
// are the project's, so the server cannot list them in a kind shared by every project.
function projectChoices(param, project, models) {
  const none = param.choices.slice(0, 1);
  if (param.kind === "label") return [...none, ...(project.labels || []).map((l) => [String(l.id), l.name])];
  const ready = models.filter((m) => m.method === param.method && m.state === "ready");
  return [...none, ...ready.map((m) => [String(m.id), `model #${m.id} · ${m.name}`])];
}

// Several of the project's labels (kind "labels": an "ids" parameter of labels); all of them
// chosen at first, since a job that finds labels usually wants every one.
function labelsSelect(param, project) {
  const labels = project.labels || [];
  return h("select", { name: param.name, "aria-label": param.label, multiple: true, size: String(Math.min(6, Math.max(2, labels.length))) },
    labels.map((l) => h("option", { value: String(l.id), selected: true }, l.name)));
}

function paramInput(param, project, models) {
  switch (param.kind) {
    case "int":
    case "float":
      return numberInput(param);
    case "bool":
      return h("input", { name: param.name, type: "checkbox", "aria-label": param.label, checked: Boolean(param.default) });
    case "choice":
      return select(param, param.choices);
    case "label":
    case "model":
      return select(param, projectChoices(param, project, models));
    case "labels":
      return labelsSelect(param, project);
    default: // text, and any kind this page does not know yet
      return h("input", { name: param.name, "aria-label": param.label, maxlength: param.max ?? null, value: param.default ?? "" });
  }
}

/** One declared parameter as a labelled control: {param, input, el}. */
export function paramField(param, project, models) {
  const input = paramInput(param, project, models);
  return { param, input, el: field(param.label, input, param.help) };
}

function valueOf({ param, input }) {
  switch (param.kind) {
    case "int":
    case "float":
      return input.value === "" ? null : Number(input.value); // empty: the server names the field
    case "bool":
      return input.checked;
    case "label":
    case "model":
      return input.value ? Number(input.value) : null;
    case "labels":
      return [...input.selectedOptions].map((o) => Number(o.value));
    case "choice":
      return input.value;
    default:
      return input.value.trim();
  }
}

/** The launch's `params`, {name: value}, from the fields paramField made. */
export function paramsOf(fields) {
  return Object.fromEntries(fields.map((f) => [f.param.name, valueOf(f)]));
}

// ---- Results ----------------------------------------------------------------------------------

function modelLink(r, projectId) {
  return r.model_id ? h("a", { href: `#/projects/${projectId}/models` }, `model #${r.model_id}`) : null;
}

// What a finished job says, by its kind's capability (the platform's export by its kind).
const RESULTS = {
  proposals(job) {
    const r = job.result || {};
    if (r.instances === undefined) return [];
    return [h("p", { class: "small" }, `${plural(r.instances, "proposal")} stored (${r.model_name})${r.skipped ? `, ${plural(r.skipped, "image")} skipped` : ""}.`)];
  },
  text_masks(job) {
    const r = job.result || {};
    if (r.instances === undefined) return [];
    return [h("p", { class: "small" }, `${plural(r.instances, "labelled mask")} stored (${r.model_name}), waiting in review${r.skipped ? `; ${plural(r.skipped, "image")} skipped` : ""}.`)];
  },
  pseudo_masks(job, projectId) {
    const r = job.result || {};
    if (r.instances === undefined) return [];
    const link = modelLink(r, projectId);
    return [h("p", { class: "small" }, `${r.instances} pseudo masks from ${r.objects} objects, waiting in review`,
      link ? h("span", {}, "; model kept as ", link) : null, ".")];
  },
  train(job, projectId) {
    const m = (job.result || {}).metrics;
    if (!m) return [];
    const figures = m.nci !== undefined && m.nci !== null
      ? `NCI ${m.nci.toFixed(2)} · NFO ${m.nfo} · NFI ${m.nfi} · mIoU ${(100 * m.miou).toFixed(1)} % on ${m.eval_images} held-back images`
      : "no held-back images to evaluate";
    return [h("p", { class: "small" }, `${m.train_steps} steps in ${Math.round(m.train_s)} s; ${figures}; `, modelLink(job.result, projectId), ".")];
  },
  export: exportResult,
};

const STATES = { pending: "pending", needs_fix: "needs fix", rejected: "rejected", accepted: "accepted" };

// An export's summary, then every mask it left out and why: skipped (no label, empty, ...)
// with links to a few of their images, and those the filter left out, by review state.
function exportResult(job) {
  if (job.state !== "succeeded") return [];
  const p = job.params || {};
  const r = job.result || {};
  const fmt = r.format || p.format || "coco";
  const what = `${fmt === "yolo" ? "YOLO" : fmt.toUpperCase()} · ${r.masks || p.masks || "rle"} · ${r.filter || p.filter || "accepted"}`;
  const counts = r.images === undefined ? "" : ` · ${plural(r.images, "image")}, ${plural(r.annotations, "mask")}`;
  const out = [h("p", { class: "small" }, what + counts)];
  const skipped = Object.entries(r.skipped || {});
  if (skipped.length) {
    const total = skipped.reduce((sum, [, n]) => sum + n, 0);
    out.push(h("details", { class: "export-skipped", open: true },
      h("summary", { class: "small" }, `${plural(total, "mask")} skipped`),
      h("ul", { class: "small" }, skipped.map(([why, n]) => h("li", { dataset: { reason: why } },
        `${n} ${(r.skipped_why || {})[why] || why}`,
        ...((r.skipped_images || {})[why] || []).slice(0, 5).map((id) => [" ", h("a", { href: `#/images/${id}` }, `image ${id}`)]).flat())))));
  }
  const leftOut = Object.entries(r.left_out || {});
  if (leftOut.length) {
    out.push(h("p", { class: "small muted export-left-out" },
      `Left out by the filter: ${leftOut.map(([state, n]) => `${n} ${STATES[state] || state}`).join(", ")}.`));
  }
  if (r.parts_dropped) out.push(h("p", { class: "small muted" }, `${plural(r.parts_dropped, "mask")} kept only their 50 largest parts.`));
  return out;
}

/** What the Jobs page says about a job's result (besides the shared parts); `kind`: its entry
 * of GET /api/jobs/kinds/, undefined for a kind the list does not have. */
export function resultDetails(job, kind, projectId) {
  const key = kind?.capability ?? (kind?.kind === "export" ? "export" : null);
  return key && Object.hasOwn(RESULTS, key) ? RESULTS[key](job, projectId) : [];
}
