// #/projects/{id} — datasets, labels, members and tasks of one project; above them, the
// masks a reviewer sent to you for fixing ("To fix (n)"), each a link to the canvas with the
// mask selected.

import { get, post } from "../api.js";
import { projectEvents } from "../events.js";
import { formatDate, h, mount, plural, showError } from "../dom.js";
import { breadcrumbs, isAdmin, roleBadge, section, stateBadge } from "./common.js";
import { labelsPanel, membersPanel } from "./project-people.js";
import { REVIEW_ROLES } from "./review.js";

export async function projectView(root, { id }, ctx) {
  document.title = "Project · Maskwright";
  mount(root, h("p", { class: "muted" }, "Loading project…"));
  let project;
  try {
    project = await get(`/api/projects/${id}/`, { signal: ctx.signal });
  } catch (error) {
    if (!ctx.alive() || error.name === "AbortError") return;
    showError(error);
    mount(
      root,
      breadcrumbs([["Projects", "#/"], [`Project ${id}`]]),
      h("div", { class: "empty" }, error.status === 404 ? "This project does not exist, or you are not one of its members. " : "The project could not be loaded. ", h("a", { href: "#/" }, "Back to your projects"), "."),
    );
    return;
  }
  if (!ctx.alive()) return;
  document.title = `${project.name} · Maskwright`;
  const admin = isAdmin(project.role);

  const datasetsBody = h("div", {}, h("p", { class: "muted" }, "Loading datasets…"));
  const tasksBody = h("div", {}, h("p", { class: "muted" }, "Loading tasks…"));
  const membersBody = h("div", {}, h("p", { class: "muted" }, "Loading members…"));
  const labelsBody = h("div", {});
  const fixes = h("div", { class: "fixes-slot" });

  mount(
    root,
    breadcrumbs([["Projects", "#/"], [project.name]]),
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, project.name),
      roleBadge(project.role),
      ["owner", "manager", "reviewer"].includes(project.role) ? h("a", { class: "button jobs-link", href: `#/projects/${project.id}/jobs` }, "Jobs") : null,
      ["owner", "manager", "reviewer"].includes(project.role) ? h("a", { class: "button secondary models-link", href: `#/projects/${project.id}/models` }, "Models") : null,
      REVIEW_ROLES.has(project.role) ? h("a", { class: "button head-actions review-link", href: `#/projects/${project.id}/review` }, "Review pseudo labels") : null,
      project.description ? h("p", { class: "page-desc" }, project.description) : null,
    ),
    h(
      "div",
      { class: "columns" },
      h("div", { class: "col-main" }, fixes, section("Datasets", datasetsBody), section("Tasks", tasksBody)),
      h("div", { class: "col-side" }, section("Labels", labelsBody), section("Members", membersBody)),
    ),
  );

  labelsPanel(labelsBody, project, admin, ctx);
  const [datasets, members, tasks, toFix] = await Promise.allSettled([
    get(`/api/projects/${id}/datasets/`, { signal: ctx.signal }),
    get(`/api/projects/${id}/members/`, { signal: ctx.signal }),
    get(`/api/projects/${id}/tasks/`, { signal: ctx.signal }),
    get(`/api/projects/${id}/fixes/?limit=${FIX_PAGE}`, { signal: ctx.signal }),
  ]);
  if (!ctx.alive()) return;
  if (toFix.status === "fulfilled") fixesPanel(fixes, project, toFix.value);
  else showError(toFix.reason, "Could not load the masks to fix");
  // A reviewer's "needs fix" (or a fix done in another tab) shows up without a reload.
  const events = projectEvents(project.id);
  ctx.onCleanup(() => events.close());
  let reload = null;
  events.on("*", (_payload, event) => {
    if (event !== "instances.reviewed" && !event.startsWith("instance.")) return;
    clearTimeout(reload);
    reload = setTimeout(() => {
      get(`/api/projects/${id}/fixes/?limit=${FIX_PAGE}`, { signal: ctx.signal })
        .then((page) => ctx.alive() && fixesPanel(fixes, project, page))
        .catch((error) => ctx.alive() && error.name !== "AbortError" && showError(error, "Could not reload the masks to fix"));
    }, 300);
  });
  ctx.onCleanup(() => clearTimeout(reload));
  const failed = (result, body, what) => {
    if (result.status === "fulfilled") return false;
    showError(result.reason, `Could not load the ${what}`);
    mount(body, h("p", { class: "error-text" }, `The ${what} could not be loaded.`));
    return true;
  };
  const datasetList = datasets.status === "fulfilled" ? datasets.value : [];
  if (!failed(datasets, datasetsBody, "datasets")) datasetsPanel(datasetsBody, project, datasetList, admin);
  if (!failed(members, membersBody, "members")) membersPanel(membersBody, project, members.value, admin, ctx);
  if (!failed(tasks, tasksBody, "tasks")) tasksPanel(tasksBody, tasks.value, datasetList);
}

const FIX_PAGE = 100;

/** The current user's needs-fix masks (only theirs: the API lists no one else's). */
function fixesPanel(slot, project, page) {
  if (!page.count) {
    mount(slot);
    return;
  }
  const labels = new Map((project.labels || []).map((l) => [l.id, l]));
  const items = page.results.map((row) => {
    const label = row.label ? labels.get(row.label) : null;
    const what = `${row.image_name || `image ${row.image}`} · ${label ? label.name : "no label"} · ${row.source}${row.score === null ? "" : ` ${Number(row.score).toFixed(2)}`}`;
    const open = row.task
      ? h("a", { class: "button small-button fix-link", href: `#/tasks/${row.task}/images/${row.image}/objects/${row.id}`, "aria-label": `Fix mask ${row.id} on ${row.image_name || `image ${row.image}`}` }, "Fix")
      : h("span", { class: "muted small" }, "no task of yours holds this image");
    return h("li", { class: "fix-item", dataset: { instanceId: row.id, imageId: row.image } }, h("span", {}, what), " ", open);
  });
  const more = page.count > page.results.length ? h("p", { class: "muted small" }, `… and ${page.count - page.results.length} more`) : null;
  mount(slot, section(`To fix (${page.count})`, h("div", {}, h("p", { class: "muted small" }, "A reviewer sent these masks back to you: correct each on the canvas; the corrected mask goes back to the review queue."), h("ul", { class: "fix-list" }, items), more), null, "to-fix"));
}

function datasetsPanel(body, project, datasets, admin) {
  const table = h("table", { class: "table" });
  const render = () => {
    if (!datasets.length) {
      mount(
        table,
        h("tbody", {}, h("tr", {}, h("td", { class: "empty-cell" }, admin ? "No datasets yet — create one below, then drop images or a zip into it." : "No datasets yet — a project owner or manager can create one."))),
      );
      return;
    }
    mount(
      table,
      h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", { class: "num" }, "Images"), h("th", {}, "Created"))),
      h(
        "tbody",
        {},
        datasets.map((ds) =>
          h(
            "tr",
            { dataset: { datasetId: ds.id } },
            h("td", {}, h("a", { href: `#/datasets/${ds.id}` }, ds.name)),
            h("td", { class: "num" }, ds.image_count ?? "—"),
            h("td", { class: "muted" }, formatDate(ds.created_at)),
          ),
        ),
      ),
    );
  };
  render();
  const children = [table];
  if (admin) {
    const name = h("input", { name: "name", required: true, maxlength: "200", placeholder: "Dataset name", "aria-label": "Dataset name" });
    const button = h("button", { type: "submit", class: "primary" }, "New dataset");
    const form = h("form", { class: "inline-form", "aria-label": "New dataset" }, name, button);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!name.value.trim()) return;
      button.disabled = true;
      try {
        const ds = await post(`/api/projects/${project.id}/datasets/`, { name: name.value.trim() });
        datasets.push({ ...ds, image_count: ds.image_count ?? 0 });
        name.value = "";
        render();
      } catch (error) {
        showError(error, "Could not create the dataset");
      } finally {
        button.disabled = false;
      }
    });
    children.push(form);
  }
  mount(body, children);
}

function tasksPanel(body, tasks, datasets) {
  if (!tasks.length) {
    mount(body, h("p", { class: "empty-inline" }, "No tasks yet — owners and managers assign images to annotators through the API (POST /api/projects/{id}/tasks/)."));
    return;
  }
  const names = new Map(datasets.map((ds) => [ds.id, ds.name]));
  mount(body, [
    h(
      "table",
      { class: "table" },
      h("thead", {}, h("tr", {}, h("th", {}, "Task"), h("th", {}, "Dataset"), h("th", {}, "Assignee"), h("th", {}, "State"), h("th", {}, "Progress"), h("th", {}, h("span", { class: "visually-hidden" }, "Annotate")))),
      h(
        "tbody",
        {},
        tasks.map((task) =>
          h(
            "tr",
            { dataset: { taskId: task.id } },
            h("td", {}, task.name),
            h("td", {}, names.has(task.dataset) ? h("a", { href: `#/datasets/${task.dataset}` }, names.get(task.dataset)) : `#${task.dataset}`),
            h("td", {}, task.assignee_username || h("span", { class: "muted" }, "unassigned")),
            h("td", {}, stateBadge(task.state)),
            h("td", { class: "task-progress" }, progressCell(task.images_done, task.images_total)),
            h("td", { class: "actions" }, annotateLink(task)),
          ),
        ),
      ),
    ),
    annotatorSummary(tasks),
  ]);
}

/** "done / total" images with a small bar; done = images holding a made or accepted mask. */
function progressCell(done, total) {
  done = done || 0;
  total = total || 0;
  const pct = total ? Math.round((100 * done) / total) : 0;
  return h(
    "div",
    { class: "progress-wrap", title: `${pct} % of the images have a mask` },
    h("div", { class: "progress", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": String(total), "aria-valuenow": String(done) }, h("div", { class: "progress-fill", style: `width: ${pct}%` })),
    h("div", { class: "progress-text" }, `${done} / ${plural(total, "image")}`),
  );
}

/** Progress summed over each annotator's tasks (unassigned tasks grouped apart). */
function annotatorSummary(tasks) {
  const byUser = new Map();
  for (const task of tasks) {
    const name = task.assignee_username || "unassigned";
    const row = byUser.get(name) || { tasks: 0, done: 0, total: 0 };
    row.tasks += 1;
    row.done += task.images_done || 0;
    row.total += task.images_total || 0;
    byUser.set(name, row);
  }
  return h(
    "table",
    { class: "table annotator-summary" },
    h("thead", {}, h("tr", {}, h("th", {}, "Annotator"), h("th", { class: "num" }, "Tasks"), h("th", {}, "Progress"))),
    h(
      "tbody",
      {},
      [...byUser.entries()].map(([name, row]) =>
        h("tr", { dataset: { annotator: name } }, h("td", {}, name), h("td", { class: "num" }, String(row.tasks)), h("td", { class: "task-progress" }, progressCell(row.done, row.total))),
      ),
    ),
  );
}

/** The task's first image in the annotate view (the API lists a task's image ids sorted). */
function annotateLink(task) {
  const first = (task.image_ids || [])[0];
  if (!first) return h("span", { class: "muted small" }, "no images");
  return h("a", { class: "button small-button annotate-link", href: `#/tasks/${task.id}/images/${first}`, "aria-label": `Annotate ${task.name}` }, "Annotate");
}
