// #/datasets/{id}'s "Attach from bucket" panel (issue 21), for project owners and managers: a
// source and a prefix under the source's own; POST /api/datasets/{id}/attach/ launches an
// `attach` job, followed here by polling GET /api/jobs/{id}/ every second; a launch again (a
// re-sync) adds only new objects. The sources themselves are managed in buckets.js.

import { ApiError, get, post } from "../api.js";
import { h, mount, plural, progressBar, showError } from "../dom.js";
import { SOURCE_FIELDS, clearFieldErrors, fieldOf, labelled, showFieldError, where } from "./buckets.js";
import { section, stateBadge } from "./common.js";

const ACTIVE = new Set(["queued", "running"]);
const POLL_MS = 1000;

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
