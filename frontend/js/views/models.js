// #/projects/{id}/models — the project's trained models (files of the methods that declare
// trained weights, from GET /api/methods/: today DynaMITe networks and EXITS generators):
// their evaluation figures, which one the annotation page offers (the default, one per method),
// upload of a published checkpoint with a progress bar, delete. A batch worker imports an
// upload (strict key check, conversion to safetensors); the row turns ready or failed live,
// from model.changed events on the project socket. For owners and managers, the published
// checkpoints (the SAM families) each interactive worker has on its disk, from
// GET /api/checkpoints/, and where to put the missing ones.

import { ApiError, del, get, post, upload } from "../api.js";
import { formatBytes, formatDate, h, mount, progressBar, showError } from "../dom.js";
import { projectEvents } from "../events.js";
import { breadcrumbs, isAdmin, roleBadge, section, stateBadge } from "./common.js";

const SEE_MODELS = new Set(["owner", "manager", "reviewer"]);
// Figures a model may carry, in the order people read them, with how to print each.
const METRICS = [
  ["nci", "NCI", (v) => v.toFixed(2)],
  ["nfo", "NFO", String],
  ["nfi", "NFI", String],
  ["miou", "mIoU", (v) => `${(100 * v).toFixed(1)} %`],
  ["noc85", "NoC@85", (v) => v.toFixed(2)],
  ["noc90", "NoC@90", (v) => v.toFixed(2)],
  ["mean_iou", "mean IoU", (v) => `${(100 * v).toFixed(1)} %`],
  ["train_steps", "steps", String],
  ["eval_images", "eval images", String],
];

export async function modelsView(root, { id }, ctx) {
  document.title = "Models · Maskwright";
  mount(root, h("p", { class: "muted" }, "Loading models…"));
  const [project, methods] = await Promise.all([
    get(`/api/projects/${id}/`, { signal: ctx.signal }), get("/api/methods/", { signal: ctx.signal })]);
  if (!ctx.alive()) return;
  // what each method declared when it registered: its label, and the model file it takes
  const labels = Object.fromEntries(methods.map((m) => [m.name, m.label]));
  const trained = methods.filter((m) => m.needs_trained_model && m.trained);
  document.title = `Models · ${project.name} · Maskwright`;
  const head = [
    breadcrumbs([["Projects", "#/"], [project.name, `#/projects/${project.id}`], ["Models"]]),
    h("div", { class: "page-head" }, h("h1", {}, "Models"), roleBadge(project.role),
      h("a", { class: "button secondary", href: `#/projects/${project.id}/jobs` }, "Jobs")),
  ];
  if (!SEE_MODELS.has(project.role)) {
    mount(root, head, h("div", { class: "empty" }, "Only the project's owners, managers and reviewers see its models."));
    return;
  }
  const events = projectEvents(project.id);
  ctx.onCleanup(() => events.close());
  const list = modelList(project, ctx, labels);
  events.on("model.changed", () => list.refresh());
  const children = [...head];
  children.push(section("Models", list.el, null, "model-list"));
  if (isAdmin(project.role) && trained.length) {
    children.push(section("Upload a checkpoint", uploadForm(project, list, trained), null, "model-upload"));
  }
  const checkpoints = isAdmin(project.role) ? checkpointList(ctx, labels) : null;
  if (checkpoints) children.push(section("Checkpoints on the workers", checkpoints.el, null, "checkpoint-list"));
  mount(root, children);
  await Promise.all([list.refresh(), checkpoints?.refresh()]);
}

/** The published checkpoints each alive interactive worker found on its own disk (a method
 * needing one is offered only where a worker has it), and the missing ones, greyed, with the
 * folder to put them in. */
function checkpointList(ctx, labels) {
  const tbody = h("tbody", {});
  const empty = h("p", { class: "empty-inline" }, "No interactive worker is running.");
  const table = h("table", { class: "table checkpoints-table" },
    h("thead", {}, h("tr", {}, ["Method", "Variant", "Model", "Size", "Device", "Worker"].map((t) => h("th", {}, t)))),
    tbody);
  const el = h("div", {},
    h("p", { class: "small muted" }, "Checkpoints are never downloaded: a worker offers a variant once its folder is on that worker's disk (it looks every 30 s)."),
    empty, table);
  const method = (c) => h("td", {}, labels[c.method] || c.method);
  const model = (c, path) => h("td", {}, h("code", {}, c.model_id), path ? h("div", { class: "small muted" }, path) : null);

  function rows(worker) {
    if (!worker.reported) {
      return [h("tr", { class: "muted", dataset: { worker: worker.hostname } },
        h("td", { colspan: 5 }, "no checkpoint report (a worker of an older release)"), h("td", {}, worker.hostname))];
    }
    const found = worker.found.map((c) => h("tr", { dataset: { checkpoint: `${c.method}/${c.variant}`, worker: worker.hostname, state: "found" } },
      method(c), h("td", {}, c.variant), model(c, c.path), h("td", {}, formatBytes(c.bytes)), h("td", {}, c.device || worker.device), h("td", {}, worker.hostname)));
    const missing = worker.missing.map((c) => h("tr", { class: "muted checkpoint-missing", dataset: { checkpoint: `${c.method}/${c.variant}`, worker: worker.hostname, state: "missing" } },
      method(c), h("td", {}, c.variant), model(c), h("td", { colspan: 2 }, "missing: put the checkpoint folder at ", h("code", {}, c.folder)), h("td", {}, worker.hostname)));
    return [...found, ...missing];
  }

  async function refresh() {
    try {
      const { workers } = await get("/api/checkpoints/", { signal: ctx.signal });
      if (!ctx.alive()) return;
      mount(tbody, workers.flatMap(rows));
      empty.hidden = workers.length > 0;
      table.hidden = workers.length === 0;
    } catch (error) {
      if (ctx.alive() && error.name !== "AbortError") showError(error, "Could not list the workers' checkpoints");
    }
  }
  return { el, refresh };
}

function field(label, input) {
  return h("label", { class: "job-field" }, h("span", { class: "small muted" }, label), input);
}

function uploadForm(project, list, trained) {
  const method = h("select", { name: "method", "aria-label": "Method" },
    trained.map((m) => h("option", { value: m.name }, m.label)));
  const backbone = h("select", { name: "backbone", "aria-label": "Backbone" });
  const name = h("input", { name: "name", placeholder: "e.g. Swin-T COCO+LVIS", "aria-label": "Model name" });
  const file = h("input", { type: "file", name: "file", "aria-label": "Checkpoint file", required: true });
  const takes = h("span", {});
  const chosen = () => trained.find((m) => m.name === method.value) || trained[0];
  const bar = progressBar("Upload progress");
  bar.el.hidden = true;
  const button = h("button", { type: "submit", class: "primary" }, "Upload");
  const fillBackbones = () => {
    const spec = chosen().trained;
    mount(backbone, h("option", { value: "" }, "detect from the keys"), spec.backbones.map((b) => h("option", { value: b }, b)));
    backbone.disabled = !spec.backbones.length;
    file.accept = spec.suffixes.join(",");
    takes.textContent = `${chosen().label} takes ${spec.description}. `;
  };
  method.addEventListener("change", fillBackbones);
  fillBackbones();
  const form = h("form", { class: "job-form", "aria-label": "Upload a checkpoint" },
    h("p", { class: "small muted" }, takes,
      "A worker checks every key and shape against the network, then converts it; it appears below as ready or failed with the reason."),
    h("div", { class: "inline-form" }, field("Method", method), field("Backbone", backbone), field("Name", name), field("File", file)),
    bar.el, h("div", { class: "inline-form" }, button));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!file.files.length) return;
    const data = new FormData();
    data.append("method", method.value);
    if (backbone.value) data.append("backbone", backbone.value);
    if (name.value.trim()) data.append("name", name.value.trim());
    data.append("file", file.files[0]);
    button.disabled = true;
    bar.el.hidden = false;
    bar.set(0, "Uploading…");
    try {
      const { promise } = upload(`/api/projects/${project.id}/models/`, data, {
        onProgress: (loaded, total) => bar.set(total ? loaded / total : null, `${formatBytes(loaded)}${total ? ` / ${formatBytes(total)}` : ""}`),
        onUploaded: () => bar.set(null, "Stored; queued for import…"),
      });
      const model = await promise;
      bar.set(1, `Uploaded: model ${model.id} is importing`);
      form.reset();
      fillBackbones();
      await list.refresh();
    } catch (error) {
      bar.el.hidden = true;
      showError(error, "Could not upload the checkpoint");
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

function metricsOf(model) {
  const m = model.metrics || {};
  const parts = METRICS.filter(([key]) => typeof m[key] === "number").map(([key, label, fmt]) => `${label} ${fmt(m[key])}`);
  return parts.length ? parts.join(" · ") : "—";
}

function modelList(project, ctx, labels) {
  const tbody = h("tbody", {});
  const empty = h("p", { class: "empty-inline" }, "No models yet: upload a published checkpoint, or train one from the Jobs page.");
  const table = h("table", { class: "table models-table" },
    h("thead", {}, h("tr", {}, h("th", {}, "Model"), h("th", {}, "Method"), h("th", {}, "State"),
      h("th", {}, "Figures"), h("th", {}, "Origin"), h("th", {}, h("span", { class: "visually-hidden" }, "Actions")))),
    tbody);
  const el = h("div", {}, empty, table);

  function row(model) {
    const actions = [];
    if (model.is_default) actions.push(h("span", { class: "state state-succeeded", title: "The annotation page offers this model" }, "default"));
    if (isAdmin(project.role)) {
      if (!model.is_default && model.state === "ready") {
        actions.push(h("button", { type: "button", class: "secondary small-button", onclick: () => act(() => post(`/api/models/${model.id}/default/`), "Could not make it the default") }, "Make default"));
      }
      if (model.state !== "importing") {
        actions.push(h("button", { type: "button", class: "secondary danger small-button", onclick: () => {
          if (confirm(`Delete model "${model.name}"? Its file is removed.`)) act(() => del(`/api/models/${model.id}/`), "Could not delete the model");
        } }, "Delete"));
      }
    }
    const state = [stateBadge(model.state === "importing" ? "running" : model.state === "ready" ? "succeeded" : "failed")];
    state[0].textContent = model.state;
    if (model.error) state.push(h("p", { class: "error-text small" }, model.error));
    const origin = model.origin === "trained" && model.job ? `trained (job #${model.job})` : model.origin;
    return h("tr", { dataset: { modelId: model.id, state: model.state } },
      h("td", {}, h("strong", {}, model.name), h("div", { class: "small muted" }, `#${model.id} · ${formatBytes(model.size_bytes)} · ${formatDate(model.created_at)}`)),
      h("td", {}, labels[model.method] || model.method, model.config && model.config.backbone ? h("div", { class: "small muted" }, model.config.backbone) : null),
      h("td", {}, state), h("td", { class: "small" }, metricsOf(model)), h("td", { class: "small" }, origin), h("td", { class: "job-actions" }, actions));
  }

  async function act(call, context) {
    try {
      await call();
      await refresh();
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) showError(error, context);
      await refresh();
    }
  }

  async function refresh() {
    try {
      const models = await get(`/api/projects/${project.id}/models/`, { signal: ctx.signal });
      if (!ctx.alive()) return;
      mount(tbody, models.map(row));
      empty.hidden = models.length > 0;
      table.hidden = models.length === 0;
    } catch (error) {
      if (ctx.alive() && error.name !== "AbortError") showError(error, "Could not list the models");
    }
  }
  return { el, refresh };
}
