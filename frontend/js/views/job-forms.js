// Parameter fields of the learning jobs on the Jobs page: EXITS pseudo masks and DynaMITe
// training. Each returns {el, params()}; the server checks every value again at launch.

import { get } from "../api.js";
import { h } from "../dom.js";

function field(label, input, hint = "") {
  return h("label", { class: "job-field", title: hint }, h("span", { class: "small muted" }, label), input);
}

function number(name, label, value, { min, max, step = "1" }) {
  return h("input", { name, type: "number", min: String(min), max: String(max), step, value: String(value), "aria-label": label });
}

function select(name, label, options, selected) {
  return h("select", { name, "aria-label": label },
    options.map(([value, text]) => h("option", { value, selected: value === selected }, text)));
}

export function exitsFields() {
  const pointsFrom = select("points_from", "Objects from", [
    ["both", "extreme points and imported boxes"], ["extreme_points", "extreme points only"], ["boxes", "imported boxes only"]], "both");
  const encoder = select("encoder", "Encoder", [["effnet-lite0", "effnet-lite0 (offline)"], ["mae-vitb16", "MAE ViT-B/16 (needs local weights)"]], "effnet-lite0");
  const warmup = number("warmup_epochs", "Warm-up epochs", 2, { min: 0, max: 50 });
  const epochs = number("epochs", "Epochs", 6, { min: 1, max: 100 });
  const crop = number("crop_size", "EXITS crop", 160, { min: 64, max: 1024, step: "32" });
  const minScore = number("min_score", "Lowest score kept", 0, { min: 0, max: 1, step: "0.01" });
  const el = h("div", { class: "inline-form job-params", dataset: { kind: "exits" }, hidden: true },
    field("Objects from", pointsFrom, "Objects outlined with the extreme-points tool, and/or boxes of imported instances"),
    field("Encoder", encoder), field("Warm-up epochs", warmup, "Paper: 8"), field("Epochs", epochs, "MAL: 10"),
    field("Crop (px)", crop, "Paper: 512; smaller is faster on CPU"), field("Lowest score kept", minScore));
  return {
    el,
    params: () => ({ points_from: pointsFrom.value, encoder: encoder.value, warmup_epochs: Number(warmup.value),
      epochs: Number(epochs.value), crop_size: Number(crop.value), min_score: Number(minScore.value) }),
  };
}

// A training job learns from accepted masks, every mask not rejected, or one method's pseudo
// labels (not rejected): the methods come from GET /api/methods/ once it answers.
function trainSources() {
  const all = h("option", { value: "all" }, "every mask not rejected");
  const el = h("select", { name: "sources", "aria-label": "Train on" },
    h("option", { value: "accepted", selected: true }, "accepted masks"), all);
  get("/api/methods/")
    .then((methods) => all.before(...methods.map((m) => h("option", { value: m.name }, `${m.label}: pseudo labels (not rejected)`))))
    .catch(() => {}); // without the list, accepted and all still work
  return el;
}

export function trainFields(models) {
  const sources = trainSources();
  const backbone = select("train_backbone", "Network", [["effnet-lite0", "effnet-lite0 (ImageNet, offline)"], ["resnet50", "ResNet-50"], ["swin_tiny", "Swin-T"]], "effnet-lite0");
  const start = select("init_model", "Start from", [["", "backbone ImageNet weights"],
    ...models.filter((m) => m.method === "dynamite" && m.state === "ready").map((m) => [String(m.id), `model #${m.id} · ${m.name}`])], "");
  const steps = number("steps", "Steps", 1000, { min: 1, max: 1000000 });
  const batch = number("batch_size", "Batch size", 2, { min: 1, max: 64 });
  const crop = number("train_crop_size", "Training crop", 384, { min: 128, max: 1536, step: "32" });
  const evalImages = number("eval_images", "Held-back images", 8, { min: 0, max: 500 });
  const name = h("input", { name: "model_name", placeholder: "model name (optional)", "aria-label": "Name of the model" });
  const el = h("div", { class: "inline-form job-params", dataset: { kind: "train" }, hidden: true },
    field("Train on", sources), field("Network", backbone, "Ignored when starting from a model"), field("Start from", start),
    field("Steps", steps, "From ImageNet weights a network starts finding objects after a few hundred steps (1000 steps on 96 COCO images: GrabCut mIoU after one click 0.02 → 0.61); fine-tuning a model needs fewer"), field("Batch", batch), field("Crop (px)", crop, "Official: 1024"),
    field("Held-back images", evalImages, "Evaluated with MIST (NCI, NFO, NFI, mIoU) after training"), field("Name", name));
  return {
    el,
    params: () => ({ sources: sources.value, backbone: backbone.value, init_model_id: start.value ? Number(start.value) : null,
      steps: Number(steps.value), batch_size: Number(batch.value), crop_size: Number(crop.value),
      eval_images: Number(evalImages.value), name: name.value.trim() }),
  };
}

// What the Jobs page says about a finished learning job (besides the shared parts).
export function learningDetails(job, projectId) {
  const r = job.result || {};
  const out = [];
  const modelLink = r.model_id ? h("a", { href: `#/projects/${projectId}/models` }, `model #${r.model_id}`) : null;
  if (job.kind === "exits" && r.instances !== undefined) {
    out.push(h("p", { class: "small" }, `${r.instances} pseudo masks from ${r.objects} objects, waiting in review`,
      modelLink ? h("span", {}, "; generator kept as ", modelLink) : null, "."));
  }
  if (job.kind === "train" && r.metrics) {
    const m = r.metrics;
    const figures = m.nci !== undefined && m.nci !== null
      ? `NCI ${m.nci.toFixed(2)} · NFO ${m.nfo} · NFI ${m.nfi} · mIoU ${(100 * m.miou).toFixed(1)} % on ${m.eval_images} held-back images`
      : "no held-back images to evaluate";
    out.push(h("p", { class: "small" }, `${m.train_steps} steps in ${Math.round(m.train_s)} s; ${figures}; `, modelLink, "."));
  }
  return out;
}

// The stage a running learning job reports, for its progress text.
export const STAGE_NAMES = {
  warmup: "warming up the extractor", retrieval: "retrieving pseudo points", generator: "training the generator",
  generate: "generating masks", store: "storing masks", train: "training", evaluate: "evaluating",
};
