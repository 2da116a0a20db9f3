// #/projects/{id} — datasets, labels, members and tasks of one project (the tasks panel and
// its admin forms live in tasks-admin.js, members and labels in project-people.js, the admins'
// bucket sources in buckets.js); above them, the masks a reviewer sent to you for fixing
// ("To fix (n)"), each a link to the canvas with the mask selected.

import { get, post } from "../api.js";
import { projectEvents } from "../events.js";
import { formatDate, h, mount, showError } from "../dom.js";
import { bucketSourcesPanel } from "./buckets.js";
import { breadcrumbs, isAdmin, roleBadge, section } from "./common.js";
import { labelsPanel, membersPanel } from "./project-people.js";
import { REVIEW_ROLES } from "./review.js";
import { tasksPanel } from "./tasks-admin.js";

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
    admin ? bucketSourcesPanel(project, ctx) : null, // full width: the table has eight columns
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
  let taskPanel = null;
  if (!failed(datasets, datasetsBody, "datasets")) datasetsPanel(datasetsBody, project, datasetList, admin, () => taskPanel?.datasetsChanged());
  // The tasks panel's assignee pickers list the members, so a member added (or an account
  // created) in the members panel shows up there at once.
  const memberList = members.status === "fulfilled" ? members.value : [];
  if (!failed(members, membersBody, "members")) membersPanel(membersBody, project, memberList, admin, ctx, () => taskPanel?.membersChanged());
  if (!failed(tasks, tasksBody, "tasks")) taskPanel = tasksPanel(tasksBody, { project, tasks: tasks.value, datasets: datasetList, members: memberList, admin, ctx });
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

/** The datasets table; owners and managers also create datasets here (`onChange()` after). */
function datasetsPanel(body, project, datasets, admin, onChange = () => {}) {
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
        onChange();
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
