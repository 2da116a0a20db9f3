// Buckets of the team's own (issue 21), for project owners and managers only:
// - the project page's "Bucket sources" panel: the project's sources (GET/POST
//   /api/projects/{id}/bucket-sources/), a Check per source (POST /api/bucket-sources/{id}/check/
//   lists one page) and Delete (refused with 409 while datasets read images from it). The
//   credentials go in through the form and never come back: a source shows "set …ABCD" or
//   "anonymous", and the secret input is never filled in.
// - the dataset page's "Attach from bucket" panel: a source and a prefix under the source's own,
//   POST /api/datasets/{id}/attach/ launches an `attach` job, followed here by polling
//   GET /api/jobs/{id}/ every second; a launch again (a re-sync) adds only new objects.
// A refusal names the field to fix (error.detail.field, or a serializer's field errors): the
// message is shown at that field.

import { ApiError, del, get, post } from "../api.js";
import { h, mount, plural, progressBar, showError } from "../dom.js";
import { section, stateBadge } from "./common.js";

const ACTIVE = new Set(["queued", "running"]);
const POLL_MS = 1000;
const PAGE_MAX = 1000; // a check lists one page of at most this many keys
const SOURCE_FIELDS = ["name", "endpoint_url", "bucket", "region", "prefix", "access_key_id", "secret_access_key"];

/** The field a refusal names, if it is one of `names` (see the header). */
export function fieldOf(error, names) {
  const detail = (error instanceof ApiError && error.detail) || {};
  if (typeof detail.field === "string" && names.includes(detail.field)) return detail.field;
  const listed = Object.keys(detail).find((key) => names.includes(key));
  return listed || null;
}

/** A labelled input with room for the error of its field: {el, input, error}. */
function labelled(text, input, hint = "") {
  const error = h("span", { class: "field-error small", "aria-live": "polite" });
  return { input, error, el: h("label", { class: "bucket-field", title: hint || null }, h("span", { class: "small muted" }, text), input, error) };
}

/** Show `error` at its field among `fields` ({name: labelled}), else in `fallback`. */
function showFieldError(error, fields, fallback) {
  clearFieldErrors(fields, fallback);
  const name = fieldOf(error, Object.keys(fields));
  const target = name ? fields[name] : null;
  if (!target) {
    fallback.textContent = error.message;
    return null;
  }
  // a serializer's own words for the field read better there than "invalid input: field: …"
  const own = error instanceof ApiError ? error.detail?.[name] : null;
  target.error.textContent = Array.isArray(own) ? own.join(" ") : error.message;
  target.input.setAttribute("aria-invalid", "true");
  target.input.focus();
  return name;
}

function clearFieldErrors(fields, fallback) {
  for (const f of Object.values(fields)) {
    f.error.textContent = "";
    f.input.removeAttribute("aria-invalid");
  }
  fallback.textContent = "";
}

const endpointText = (source) => source.endpoint_url || "AWS S3";
const credentialsText = (source) => (source.credentials_set ? `set ${source.access_key_id_hint}`.trim() : "anonymous");
const where = (source) => `${source.bucket}${source.prefix ? `/${source.prefix}` : ""}`;

// ---- Project page: the sources --------------------------------------------------------------

/** The "Bucket sources" section of the project page (call only for owners and managers). */
export function bucketSourcesPanel(project, ctx) {
  let sources = [];
  const notes = new Map(); // source id -> {ok, text} of its last check or refusal
  const table = h("table", { class: "table bucket-table", "aria-label": "Bucket sources" });
  const body = h("div", {}, table, addForm(project, ctx, (source) => {
    sources.push(source);
    render();
    check(source); // a wrong bucket or refused keys show at once, in the new source's row
  }));
  mount(table, h("tbody", {}, h("tr", {}, h("td", { class: "empty-cell" }, "Loading bucket sources…"))));

  function render() {
    if (!sources.length) {
      mount(table, h("tbody", {}, h("tr", {}, h("td", { class: "empty-cell" }, "No bucket sources yet — add one below to attach its images to a dataset without copying them."))));
      return;
    }
    const head = ["Name", "Endpoint", "Bucket", "Prefix", "Region", "Credentials"].map((t) => h("th", {}, t));
    mount(
      table,
      h("thead", {}, h("tr", {}, head, h("th", { class: "num" }, "Images"), h("th", { class: "actions" }, h("span", { class: "visually-hidden" }, "Actions")))),
      h("tbody", {}, sources.map(rows)),
    );
  }

  function rows(source) {
    const checkButton = h("button", { type: "button", class: "small-button", "aria-label": `Check ${source.name}`, onclick: () => check(source, checkButton) }, "Check");
    const deleteButton = h("button", { type: "button", class: "small-button danger", "aria-label": `Delete ${source.name}`, onclick: () => remove(source, deleteButton) }, "Delete");
    const row = h(
      "tr",
      { class: "bucket-row", dataset: { sourceId: source.id } },
      h("td", { class: "bucket-name" }, source.name),
      h("td", { class: "bucket-endpoint" }, endpointText(source)),
      h("td", {}, source.bucket),
      h("td", {}, source.prefix || h("span", { class: "muted" }, "—")),
      h("td", {}, source.region),
      h("td", { class: `bucket-credentials${source.credentials_set ? "" : " muted"}` }, credentialsText(source)),
      h("td", { class: "num" }, source.images ?? 0),
      h("td", { class: "actions" }, checkButton, " ", deleteButton),
    );
    const note = notes.get(source.id);
    const noteRow = h(
      "tr",
      { class: "bucket-note-row", dataset: { sourceId: source.id }, hidden: !note },
      h("td", { colspan: "8", class: `bucket-note ${note?.ok ? "ok-text" : "error-text"}`, role: "status", "aria-label": `Check of ${source.name}` }, note?.text ?? ""),
    );
    return [row, noteRow];
  }

  async function check(source, button = null) {
    if (button) button.disabled = true;
    notes.set(source.id, { ok: true, text: "Checking…" });
    render();
    try {
      const answer = await post(`/api/bucket-sources/${source.id}/check/`);
      const seen = answer.objects_seen >= PAGE_MAX ? `${PAGE_MAX} or more objects` : plural(answer.objects_seen, "object");
      notes.set(source.id, { ok: true, text: `reachable — ${seen} seen` });
    } catch (error) {
      if (!ctx.alive()) return;
      const field = fieldOf(error, SOURCE_FIELDS);
      notes.set(source.id, { ok: false, text: field ? `${field}: ${error.message}` : error.message });
    }
    if (ctx.alive()) render();
  }

  async function remove(source, button) {
    if (!window.confirm(`Delete the bucket source “${source.name}”? Its objects stay in the bucket.`)) return;
    button.disabled = true;
    try {
      await del(`/api/bucket-sources/${source.id}/`);
      sources = sources.filter((s) => s.id !== source.id);
      notes.delete(source.id);
      render();
    } catch (error) {
      button.disabled = false;
      if (ctx.alive()) showError(error, `Could not delete ${source.name}`);
    }
  }

  get(`/api/projects/${project.id}/bucket-sources/`, { signal: ctx.signal })
    .then((list) => {
      sources = list;
      if (ctx.alive()) render();
    })
    .catch((error) => {
      if (!ctx.alive() || error.name === "AbortError") return;
      showError(error, "Could not load the bucket sources");
      mount(table, h("tbody", {}, h("tr", {}, h("td", { class: "error-text" }, "The bucket sources could not be loaded."))));
    });
  return section("Bucket sources", body, null, "bucket-sources");
}

/** The "Add bucket source" form; `onAdded(source)` after the server stored it. */
function addForm(project, ctx, onAdded) {
  const input = (name, attrs = {}) => h("input", { name, "aria-label": attrs.label, ...attrs, label: null });
  const fields = {
    name: labelled("Name", input("name", { label: "Source name", required: true, maxlength: "200", placeholder: "e.g. field photos" })),
    endpoint_url: labelled("Endpoint URL", input("endpoint_url", { label: "Endpoint URL", type: "url", maxlength: "500", placeholder: "empty for AWS S3" }), "the S3 API's URL (MinIO, Ceph, R2…); empty for AWS S3"),
    bucket: labelled("Bucket", input("bucket", { label: "Bucket", required: true, maxlength: "255" })),
    region: labelled("Region", input("region", { label: "Region", maxlength: "64", value: "us-east-1" })),
    prefix: labelled("Prefix", input("prefix", { label: "Prefix", maxlength: "500", placeholder: "optional, e.g. photos/2026" }), "only keys under this prefix are ever listed"),
    access_key_id: labelled("Access key id", input("access_key_id", { label: "Access key id", maxlength: "200", autocomplete: "off", spellcheck: "false" }), "empty (with the secret empty too): anonymous reads of a public bucket"),
    secret_access_key: labelled("Secret access key", input("secret_access_key", { label: "Secret access key", type: "password", maxlength: "400", autocomplete: "off" }), "stored encrypted; never shown again"),
  };
  const status = h("p", { class: "form-status small", "aria-live": "polite" });
  const submit = h("button", { type: "submit", class: "primary" }, "Add bucket source");
  const form = h(
    "form",
    { class: "bucket-form", "aria-label": "Add bucket source", autocomplete: "off" },
    h("h3", { class: "bucket-form-title" }, "Add bucket source"),
    h("div", { class: "bucket-form-grid" }, Object.values(fields).map((f) => f.el)),
    h("p", { class: "muted small" }, "The keys are stored encrypted and never shown again; leave both empty for a public bucket."),
    h("div", { class: "button-row" }, submit),
    status,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(fields, status);
    status.classList.remove("error-text");
    const body = {};
    for (const [name, f] of Object.entries(fields)) body[name] = f.input.value.trim();
    if (!body.region) delete body.region; // the server's default
    submit.disabled = true;
    try {
      const source = await post(`/api/projects/${project.id}/bucket-sources/`, body);
      if (!ctx.alive()) return;
      for (const [name, f] of Object.entries(fields)) f.input.value = name === "region" ? "us-east-1" : "";
      status.textContent = `Added “${source.name}”.`;
      onAdded(source);
    } catch (error) {
      if (!ctx.alive()) return;
      fields.secret_access_key.input.value = ""; // never kept around after a refusal either
      status.classList.add("error-text");
      showFieldError(error, fields, status);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

// ---- Dataset page: attach a prefix ----------------------------------------------------------

/** The "Attach from bucket" section of the dataset page (owners and managers only);
 * `onDone(job)` once an attach job ended (the grid reloads). */
export function attachPanel({ project, dataset, ctx, onDone = () => {} }) {
  const body = h("div", { class: "attach-panel" }, h("p", { class: "muted" }, "Loading bucket sources…"));
  Promise.all([get(`/api/projects/${project.id}/bucket-sources/`, { signal: ctx.signal }), get(`/api/projects/${project.id}/jobs/`, { signal: ctx.signal })])
    .then(([sources, jobs]) => {
      if (!ctx.alive()) return;
      const attaches = jobs.filter((j) => j.kind === "attach" && j.dataset === dataset.id);
      if (!sources.length) {
        mount(body, h("p", { class: "muted attach-empty" }, "This project has no bucket sources yet — add one on ", h("a", { href: `#/projects/${project.id}` }, "the project page"), ", then attach its images here."));
        return;
      }
      attachForm(body, { project, dataset, ctx, onDone, sources, attaches });
    })
    .catch((error) => {
      if (!ctx.alive() || error.name === "AbortError") return;
      showError(error, "Could not load the bucket sources");
      mount(body, h("p", { class: "error-text" }, "The bucket sources could not be loaded."));
    });
  return section("Attach from bucket", body, null, "attach-section");
}

function attachForm(body, { project, dataset, ctx, onDone, sources, attaches }) {
  const select = h("select", { name: "bucket_id", "aria-label": "Bucket source" }, sources.map((s) => h("option", { value: String(s.id) }, `${s.name} — ${where(s)}`)));
  const root = h("code", { class: "attach-root" });
  const fields = {
    bucket_id: labelled("Bucket source", select),
    prefix: labelled("Prefix", h("input", { name: "prefix", "aria-label": "Prefix", maxlength: "500", placeholder: "everything under the source" }), "a prefix under the source's own prefix; empty: all of it"),
  };
  const button = h("button", { type: "submit", class: "primary" }, "Attach");
  const status = h("p", { class: "form-status small error-text", "aria-live": "polite" });
  const explain = h("p", { class: "muted small attach-note" });
  const form = h(
    "form",
    { class: "attach-form", "aria-label": "Attach from bucket" },
    fields.bucket_id.el,
    h("div", { class: "attach-prefix" }, root, fields.prefix.el),
    h("div", { class: "attach-submit" }, button),
  );
  const tracker = jobTracker({ project, ctx, onEnd: (job) => {
    attaches.unshift(job);
    button.disabled = false;
    relabel();
    onDone(job);
  } });
  mount(body, form, explain, status, tracker.el);

  const chosen = () => sources.find((s) => String(s.id) === select.value);
  const prefixOf = () => fields.prefix.input.value.trim().replace(/^\/+|\/+$/g, "");
  function relabel() {
    const source = chosen();
    root.textContent = `${source.bucket}/${source.prefix ? `${source.prefix}/` : ""}`;
    const before = attaches.some((j) => j.params?.bucket_id === source.id && (j.params?.prefix || "") === prefixOf() && j.state !== "failed");
    button.textContent = before ? "Re-sync" : "Attach";
    explain.textContent = before
      ? "This dataset already has images from here: a re-sync adds only the objects that are new since, and skips the rest."
      : "Images are read from the bucket in place (only thumbnails are stored here); non-images are skipped and listed. Launching again later adds only new objects.";
  }
  for (const [control, event] of [[select, "change"], [fields.prefix.input, "input"]]) {
    control.addEventListener(event, () => {
      clearFieldErrors(fields, status); // an error of the previous choice
      relabel();
    });
  }
  relabel();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(fields, status);
    button.disabled = true;
    try {
      tracker.follow(await post(`/api/datasets/${dataset.id}/attach/`, { bucket_id: Number(select.value), prefix: prefixOf() }));
    } catch (error) {
      if (!ctx.alive()) return;
      if (error instanceof ApiError && error.status === 409 && error.detail?.job_id) {
        // an attach already runs on this dataset: follow that one
        get(`/api/jobs/${error.detail.job_id}/`, { signal: ctx.signal })
          .then((job) => ctx.alive() && tracker.follow(job))
          .catch((e) => ctx.alive() && e.name !== "AbortError" && showError(e, "Could not load the running attach job"));
        return;
      }
      button.disabled = false;
      // the source's own fields are fixed on the project page: point at the source then
      const field = fieldOf(error, [...SOURCE_FIELDS, "bucket_id"]);
      if (field === "prefix") showFieldError(error, fields, status);
      else if (field) showFieldError(new ApiError(`${error.message} — fix the source on the project page`, { detail: { field: "bucket_id" } }), fields, status);
      else status.textContent = error.message;
    }
  });

  const running = attaches.find((j) => ACTIVE.has(j.state));
  if (running) {
    button.disabled = true;
    tracker.follow(running);
  }
}

/** The progress of one attach job, polled until it ends: {el, follow(job)}. */
function jobTracker({ project, ctx, onEnd }) {
  const bar = progressBar("Attach progress");
  const badge = h("span", {});
  const cancel = h("button", { type: "button", class: "small-button danger" }, "Cancel");
  const result = h("div", { class: "job-result attach-result", "aria-live": "polite" });
  const el = h(
    "div",
    { class: "attach-job", hidden: true },
    h("div", { class: "attach-job-head" }, h("strong", {}, "Attach job"), badge, h("span", { class: "spacer" }), cancel, h("a", { class: "small", href: `#/projects/${project.id}/jobs` }, "Open the Jobs page")),
    bar.el,
    result,
  );
  let job = null;
  let timer = null;

  function show(fresh) {
    job = fresh;
    el.hidden = false;
    el.dataset.jobId = String(job.id);
    el.dataset.state = job.state;
    mount(badge, stateBadge(job.state));
    const active = ACTIVE.has(job.state);
    cancel.hidden = !active;
    const total = job.total || 0;
    if (job.state === "queued") bar.set(null, "Queued — waiting for a worker…");
    else if (active && !total) bar.set(null, "Listing the bucket…");
    else bar.set(total ? job.done / total : job.state === "succeeded" ? 1 : 0, `${job.done || 0} of ${plural(total, "object")} done`);
    if (active) {
      clearTimeout(timer);
      timer = setTimeout(poll, POLL_MS);
      return;
    }
    mount(result, outcome(job));
    onEnd(job);
  }

  async function poll() {
    if (!job || !ctx.alive()) return;
    try {
      const fresh = await get(`/api/jobs/${job.id}/`, { signal: ctx.signal });
      if (ctx.alive()) show(fresh);
    } catch (error) {
      if (ctx.alive() && error.name !== "AbortError") showError(error, "Lost track of the attach job — see the Jobs page");
    }
  }

  cancel.addEventListener("click", async () => {
    if (!job) return;
    cancel.disabled = true;
    try {
      show(await post(`/api/jobs/${job.id}/cancel/`));
    } catch (error) {
      if (ctx.alive()) showError(error, "Could not cancel the attach job");
    } finally {
      cancel.disabled = false;
    }
  });
  ctx.onCleanup(() => clearTimeout(timer));

  return {
    el,
    follow(started) {
      mount(result);
      show(started);
    },
  };
}

/** What an ended attach job did, in words, with the skipped objects and their reasons. */
function outcome(job) {
  if (job.state === "failed") return h("p", { class: "error-text" }, `The attach failed: ${job.error || "no reason given"}`);
  if (!job.result) return h("p", { class: "muted attach-summary" }, job.state === "cancelled" ? "Cancelled — the images attached so far stay; launching again adds the rest." : `Ended: ${job.state}.`);
  const r = job.result;
  const parts = [`${plural(r.registered ?? 0, "image")} attached`, `${r.skipped ?? 0} skipped`];
  if (r.already_registered) parts.push(`${r.already_registered} already attached`);
  if (r.duplicates) parts.push(`${plural(r.duplicates, "duplicate")} of images in the dataset`);
  const skipped = r.skipped_objects || [];
  return [
    h("p", { class: job.state === "succeeded" ? "ok-text attach-summary" : "muted attach-summary" }, `${job.state === "cancelled" ? "Cancelled — " : ""}${parts.join(" · ")}.`),
    skipped.length
      ? h(
          "table",
          { class: "table refused-table skipped-table", "aria-label": "Skipped objects" },
          h("thead", {}, h("tr", {}, h("th", {}, "Skipped object"), h("th", {}, "Reason"))),
          h("tbody", {}, skipped.map((o) => h("tr", { class: "refused" }, h("td", { class: "file-name" }, o.key), h("td", { class: "reason" }, o.reason)))),
        )
      : null,
  ];
}
