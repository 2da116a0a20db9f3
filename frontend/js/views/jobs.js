// #/projects/{id}/jobs — batch jobs of a project: launch (owners and managers) one of the job
// kinds the server lists at GET /api/jobs/kinds/ (the methods' batch jobs, and an export) on a
// dataset, with a form built from the kind's declared parameters, and follow every job live:
// progress in the kind's unit with an ETA from the observed rate, its stage, state, Cancel, the
// error of a failed job or image, what its result made, the export's download link.
// An active job also shows its worker's lease: "worker alive, last beat 3 s ago", or "worker
// lost — resuming" when the worker stopped renewing it (the server resumes or fails the job).
// Updates arrive as job.progress events on the project socket; while it is down the list is
// polled every second (every 5 s as a safety net while it is up).

import { ApiError, get, post } from "../api.js";
import { h, mount, plural, progressBar, showError } from "../dom.js";
import { projectEvents } from "../events.js";
import { breadcrumbs, isAdmin, roleBadge, section, stateBadge } from "./common.js";
import { field, paramField, paramsOf, resultDetails } from "./job-forms.js";

const ACTIVE = new Set(["queued", "running"]);
const SEE_JOBS = new Set(["owner", "manager", "reviewer"]);

export async function jobsView(root, { id }, ctx) {
  document.title = "Jobs · Maskwright";
  mount(root, h("p", { class: "muted" }, "Loading jobs…"));
  const project = await get(`/api/projects/${id}/`, { signal: ctx.signal });
  if (!ctx.alive()) return;
  document.title = `Jobs · ${project.name} · Maskwright`;
  const head = [
    breadcrumbs([["Projects", "#/"], [project.name, `#/projects/${project.id}`], ["Jobs"]]),
    h("div", { class: "page-head" }, h("h1", {}, "Jobs"), roleBadge(project.role)),
  ];
  if (!SEE_JOBS.has(project.role)) {
    mount(root, head, h("div", { class: "empty" }, "Only the project's owners, managers and reviewers see its jobs."));
    return;
  }
  const [datasets, kinds, models] = await Promise.all([
    get(`/api/projects/${id}/datasets/`, { signal: ctx.signal }),
    // What this server can run: each kind's form, and its name, unit and stages in the list.
    get("/api/jobs/kinds/", { signal: ctx.signal }),
    get(`/api/projects/${id}/models/`, { signal: ctx.signal }),
  ]);
  if (!ctx.alive()) return;
  const events = projectEvents(project.id);
  ctx.onCleanup(() => events.close());

  const byKind = new Map(kinds.map((k) => [k.kind, k]));
  const list = jobList(project, datasets, byKind, events, ctx);
  const children = [...head];
  if (isAdmin(project.role)) children.push(section("Launch a job", launchForm(project, datasets, kinds, models, list), null, "job-launch"));
  children.push(section("Jobs", list.el, list.live));
  mount(root, children);
  await list.refresh();
}

// ---- Launch form ------------------------------------------------------------------------------

function launchForm(project, datasets, kinds, models, list) {
  const dataset = h("select", { name: "dataset", "aria-label": "Dataset" }, datasets.map((ds) => h("option", { value: ds.id }, ds.name)));
  // the server lists the kinds in menu order, the default first
  const kind = h("select", { name: "kind", "aria-label": "Job kind" }, kinds.map((k) => h("option", { value: k.kind }, k.label)));
  const params = h("div", { class: "inline-form job-params" });
  let fields = [];
  // Only the chosen kind's fields are in the page: two kinds may share a label ("Epochs").
  const showFields = () => {
    const chosen = kinds.find((k) => k.kind === kind.value);
    fields = chosen ? chosen.params.map((param) => paramField(param, project, models)) : [];
    params.dataset.kind = kind.value;
    params.title = chosen?.summary || "";
    mount(params, fields.map((f) => f.el));
  };
  showFields();

  const button = h("button", { type: "submit", class: "primary" }, "Launch");
  const form = h("form", { class: "job-form", "aria-label": "Launch a job" },
    h("div", { class: "inline-form" }, field("Dataset", dataset), field("Kind", kind)), params,
    h("div", { class: "inline-form" }, button));
  kind.addEventListener("change", showFields);
  if (!datasets.length) {
    button.disabled = true;
    form.append(h("p", { class: "empty-inline" }, "No datasets yet — create one on the project page first."));
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    try {
      const job = await post(`/api/projects/${project.id}/jobs/`, { dataset_id: Number(dataset.value), kind: kind.value, params: paramsOf(fields) });
      list.upsert(job);
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) await list.refresh();
      showError(error, "Could not launch the job");
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

// ---- The live list ----------------------------------------------------------------------------

// `kinds`: kind -> its entry of GET /api/jobs/kinds/ (a kind not listed, e.g. verify, shows as is)
function jobList(project, datasets, kinds, events, ctx) {
  const names = new Map(datasets.map((ds) => [ds.id, ds.name]));
  const tbody = h("tbody", {});
  const empty = h("p", { class: "empty-inline" }, "No jobs yet.");
  const table = h(
    "table", { class: "table jobs-table" },
    h("thead", {}, h("tr", {}, h("th", {}, "Job"), h("th", {}, "Dataset"), h("th", {}, "State"), h("th", { class: "job-progress-col" }, "Progress"), h("th", {}, "Details"), h("th", {}, h("span", { class: "visually-hidden" }, "Actions")))),
    tbody,
  );
  const el = h("div", {}, empty, table);
  const live = h("span", { class: "muted small live-note" });
  const rows = new Map(); // job id -> {job, tr, bar, ...}
  let pollTimer = null;

  function rowFor(job) {
    let row = rows.get(job.id);
    if (row) return row;
    const bar = progressBar(`Progress of job ${job.id}`);
    row = {
      job, bar, samples: [],
      state: h("td", {}), details: h("td", { class: "job-details" }), actions: h("td", { class: "job-actions" }),
      lease: h("p", { class: "small muted job-lease" }), leaseAt: Date.now(),
    };
    row.tr = h("tr", { dataset: { jobId: job.id, kind: job.kind } },
      h("td", {}, `#${job.id} `, kinds.get(job.kind)?.label || job.kind),
      h("td", {}, names.get(job.dataset) || (job.dataset ? `dataset ${job.dataset}` : "—")),
      row.state, h("td", { class: "job-progress-col" }, bar.el), row.details, row.actions);
    rows.set(job.id, row);
    // newest first, like the API
    const after = [...rows.keys()].filter((other) => other > job.id).length;
    tbody.insertBefore(row.tr, tbody.children[after] || null);
    return row;
  }

  function eta(row) {
    const { job, samples } = row;
    if (job.state !== "running" || !job.total || samples.length < 2) return "";
    const first = samples[0];
    const last = samples[samples.length - 1];
    const rate = (last.done - first.done) / ((last.t - first.t) / 1000);
    if (!(rate > 0)) return "";
    const seconds = Math.round((job.total - job.done) / rate);
    return seconds < 60 ? ` · about ${seconds} s left` : ` · about ${Math.round(seconds / 60)} min left`;
  }

  function render(row) {
    const { job } = row;
    row.tr.dataset.state = job.state;
    mount(row.state, stateBadge(job.state));
    const info = kinds.get(job.kind);
    const unit = info?.unit || "image";
    const stage = job.stage || (job.cursor && job.cursor.stage);
    const stageName = info?.stages?.[stage];
    const done = job.done || 0;
    const total = job.total || 0;
    if (job.state === "queued") row.bar.set(null, "Queued — waiting for a worker…");
    else if (job.state === "running" && !total) row.bar.set(null, "Starting…");
    else {
      const fraction = total ? done / total : job.state === "succeeded" ? 1 : 0;
      const doing = job.state === "running" && stageName ? ` · ${stageName}` : "";
      row.bar.set(fraction, `${Math.round(fraction * 100)} % — ${done} / ${plural(total, unit)}${doing}${eta(row)}`);
    }
    row.lease.textContent = leaseText(row);
    row.lease.dataset.lease = ACTIVE.has(job.state) && job.lease ? job.lease.status : "";
    mount(row.details, [row.lease, ...details(job)]);
    const actions = [];
    if (ACTIVE.has(job.state) && isAdmin(project.role)) {
      actions.push(h("button", { type: "button", class: "secondary danger small-button", disabled: job.cancel_requested, onclick: () => cancel(row) }, job.cancel_requested ? "Cancelling…" : "Cancel"));
    }
    if (job.kind === "export" && job.state === "succeeded" && job.result_file && isAdmin(project.role)) {
      actions.push(h("a", { class: "button small-button", href: `/api/jobs/${job.id}/download`, download: "" }, "Download"));
    }
    mount(row.actions, actions);
  }

  // What the server last said of the job's worker, aged by the time since it said it.
  function leaseText(row) {
    const { job } = row;
    const lease = job.lease;
    if (!lease || !ACTIVE.has(job.state)) return "";
    if (lease.status === "alive") {
      if (lease.last_beat_s == null) return "worker alive";
      const age = Math.max(0, Math.round(lease.last_beat_s + (Date.now() - row.leaseAt) / 1000));
      return `worker alive, last beat ${age} s ago`;
    }
    if (lease.status === "resuming") return `worker lost — resuming (run ${lease.attempts + 1} of ${lease.max_attempts})`;
    return lease.attempts < lease.max_attempts ? "worker lost — resuming" : "worker lost — the job will fail";
  }

  function details(job) {
    const r = job.result || {};
    const out = [];
    if (job.state === "failed") out.push(h("p", { class: "error-text" }, `Failed: ${job.error || "no reason given"}`));
    out.push(...resultDetails(job, kinds.get(job.kind), project.id));
    const errors = r.errors || r.problems || [];
    if (errors.length) {
      out.push(h("details", { class: "job-errors" },
        h("summary", { class: "error-text" }, `${plural(r.failed ?? errors.length, "image")} failed`),
        h("ul", {}, errors.map((e) => h("li", {}, h("a", { href: `#/images/${e.image_id}` }, e.name || `image ${e.image_id}`), `: ${e.error || e.problem}`)))));
    }
    if (job.state === "cancelled") out.push(h("p", { class: "muted small" }, "Cancelled; what was done is kept."));
    return out;
  }

  function upsert(update) {
    const row = rowFor(update);
    const wasActive = ACTIVE.has(row.job.state);
    row.job = { ...row.job, ...update };
    if (update.lease !== undefined) row.leaseAt = Date.now();
    if (row.job.state === "running") {
      row.samples.push({ t: Date.now(), done: row.job.done || 0 });
      if (row.samples.length > 30) row.samples.shift();
    }
    empty.hidden = rows.size > 0;
    render(row);
    // The push carries progress only: fetch the result and file once the job ends.
    if (wasActive && !ACTIVE.has(row.job.state) && update.result === undefined) fetchOne(row.job.id);
    schedulePoll();
  }

  async function fetchOne(jobId) {
    try {
      const fresh = await get(`/api/jobs/${jobId}/`, { signal: ctx.signal });
      if (ctx.alive()) upsert(fresh);
    } catch (error) {
      if (ctx.alive() && error.name !== "AbortError") showError(error, `Could not load job ${jobId}`);
    }
  }

  async function refresh() {
    try {
      const jobs = await get(`/api/projects/${project.id}/jobs/`, { signal: ctx.signal });
      if (!ctx.alive()) return;
      for (const job of [...jobs].reverse()) upsert(job);
      empty.hidden = rows.size > 0;
      table.hidden = rows.size === 0;
    } catch (error) {
      if (ctx.alive() && error.name !== "AbortError") showError(error, "Could not list the jobs");
    }
  }

  async function cancel(row) {
    try {
      upsert(await post(`/api/jobs/${row.job.id}/cancel/`));
    } catch (error) {
      showError(error, "Could not cancel the job");
    }
  }

  function schedulePoll() {
    table.hidden = rows.size === 0;
    const connected = events.connected();
    live.textContent = connected ? "live" : "polling";
    const anyActive = [...rows.values()].some((row) => ACTIVE.has(row.job.state));
    if (!anyActive || !ctx.alive()) {
      clearTimeout(pollTimer);
      pollTimer = null;
      return;
    }
    if (pollTimer) return;
    pollTimer = setTimeout(async () => {
      pollTimer = null;
      await refresh();
    }, connected ? 5000 : 1000);
  }

  const offProgress = events.on("job.progress", (payload) => {
    if (!rows.has(payload.job_id)) return void fetchOne(payload.job_id); // launched elsewhere
    upsert({ id: payload.job_id, kind: payload.kind, state: payload.state, done: payload.done, total: payload.total, error: payload.error, lease: payload.lease });
  });
  const offState = events.onState(() => {
    clearTimeout(pollTimer);
    pollTimer = null;
    schedulePoll();
  });
  // the "last beat" age counts up between updates
  const leaseTicker = setInterval(() => {
    for (const row of rows.values()) if (ACTIVE.has(row.job.state)) row.lease.textContent = leaseText(row);
  }, 1000);
  ctx.onCleanup(() => {
    offProgress();
    offState();
    clearTimeout(pollTimer);
    clearInterval(leaseTicker);
  });
  return { el, live, upsert, refresh };
}
