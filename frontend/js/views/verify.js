// "Verify dataset": launch a verify job and follow it live (websocket job.progress events,
// polling GET /api/jobs/{id}/ every second while the socket is not connected), with Cancel.

import { ApiError, get, post } from "../api.js";
import { h, mount, plural, progressBar, showError } from "../dom.js";
import { stateBadge } from "./common.js";

const ACTIVE = new Set(["queued", "running"]);

export function verifyPanel({ project, dataset, events, ctx }) {
  const button = h("button", { type: "button", class: "secondary", title: "Re-open every stored image, check it decodes and rebuild missing thumbnails" }, "Verify dataset");
  const el = h("section", { class: "panel job-panel", "aria-label": "Verify job", hidden: true });
  let job = null;
  let pollTimer = null;
  let unsubscribe = null;

  const bar = progressBar("Verify progress");
  const title = h("h2", {}, "Verify dataset");
  const badge = h("span", {});
  const cancel = h("button", { type: "button", class: "secondary danger" }, "Cancel");
  const result = h("div", { class: "job-result" });
  const live = h("span", { class: "muted small live-note" });
  mount(el, h("div", { class: "panel-head" }, title, badge, live, h("div", { class: "spacer" }), cancel), bar.el, result);

  function show(update) {
    job = { ...job, ...update };
    el.hidden = false;
    mount(badge, stateBadge(job.state));
    const active = ACTIVE.has(job.state);
    cancel.hidden = !active;
    button.disabled = active;
    const total = job.total || 0;
    const done = job.done || 0;
    if (job.state === "queued") bar.set(null, "Queued — waiting for a worker…");
    else if (job.state === "running" && !total) bar.set(null, "Starting…");
    else bar.set(total ? done / total : job.state === "succeeded" ? 1 : 0, `${done} of ${plural(total, "image")} checked`);
    if (!active) finish();
  }

  async function finish() {
    stopFollowing();
    live.textContent = "";
    if (job.state === "failed") {
      mount(result, h("p", { class: "error-text" }, `The job failed: ${job.error || "no reason given"}`));
      return;
    }
    if (job.state === "cancelled") {
      mount(result, h("p", { class: "muted" }, "Cancelled."));
      return;
    }
    try {
      const full = await get(`/api/jobs/${job.id}/`);
      if (!ctx.alive()) return;
      const r = full.result || {};
      const problems = r.problems || [];
      mount(
        result,
        h("p", { class: problems.length ? "error-text" : "ok-text" }, `${plural(r.checked ?? full.done, "image")} checked — ${problems.length ? plural(problems.length, "problem") : "no problems"}${r.thumbnails_rebuilt ? `, ${plural(r.thumbnails_rebuilt, "thumbnail")} rebuilt` : ""}.`),
        problems.length
          ? h("ul", { class: "problems" }, problems.map((p) => h("li", {}, h("a", { href: `#/images/${p.image_id}` }, `image ${p.image_id}`), `: ${p.problem}`)))
          : null,
      );
    } catch (error) {
      if (ctx.alive()) showError(error, "Could not load the verify result");
    }
  }

  async function poll() {
    if (!job || !ctx.alive()) return;
    try {
      const fresh = await get(`/api/jobs/${job.id}/`, { signal: ctx.signal });
      if (ctx.alive() && job && fresh.id === job.id) show(fresh);
    } catch (error) {
      if (ctx.alive() && error.name !== "AbortError") {
        stopFollowing();
        showError(error, "Lost track of the verify job");
      }
    }
  }

  function schedulePoll() {
    clearTimeout(pollTimer);
    if (!job || !ACTIVE.has(job.state) || !ctx.alive()) return;
    // Every second while the socket is down; a slow safety net while pushes arrive.
    const connected = events.connected();
    live.textContent = connected ? "live" : "polling";
    pollTimer = setTimeout(async () => {
      await poll();
      schedulePoll();
    }, connected ? 5000 : 1000);
  }

  function follow(started) {
    stopFollowing();
    job = started;
    mount(result);
    const offProgress = events.on("job.progress", (payload) => {
      if (job && payload.job_id === job.id) show({ state: payload.state, done: payload.done, total: payload.total, error: payload.error });
    });
    const offState = events.onState(() => schedulePoll()); // socket up or down: re-pace polling
    unsubscribe = () => {
      offProgress();
      offState();
    };
    show(started);
    schedulePoll();
  }

  function stopFollowing() {
    clearTimeout(pollTimer);
    pollTimer = null;
    if (unsubscribe) unsubscribe();
    unsubscribe = null;
  }

  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const started = await post(`/api/projects/${project.id}/jobs/`, { dataset_id: dataset.id, kind: "verify", params: {} });
      follow(started);
    } catch (error) {
      if (error instanceof ApiError && error.status === 409 && error.detail?.job_id) {
        // One is already running on this dataset: follow that one instead.
        follow(await get(`/api/jobs/${error.detail.job_id}/`));
        return;
      }
      button.disabled = false;
      showError(error, "Could not start the verify job");
    }
  });

  cancel.addEventListener("click", async () => {
    if (!job) return;
    cancel.disabled = true;
    try {
      show(await post(`/api/jobs/${job.id}/cancel/`));
    } catch (error) {
      showError(error, "Could not cancel the job");
    } finally {
      cancel.disabled = false;
    }
  });

  ctx.onCleanup(stopFollowing);

  // A verify job already under way on this dataset (launched earlier, or by someone else).
  get(`/api/projects/${project.id}/jobs/`, { signal: ctx.signal })
    .then((jobs) => {
      const running = jobs.find((j) => j.dataset === dataset.id && j.kind === "verify" && ACTIVE.has(j.state));
      if (running && ctx.alive() && !job) follow(running);
    })
    .catch((error) => {
      if (ctx.alive() && error.name !== "AbortError") showError(error, "Could not list the jobs");
    });

  return { el, button };
}
