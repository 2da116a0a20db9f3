// The Tasks panel of the project page: every task with its assignee, state and progress; for
// owners and managers also the "New task" form (a dataset's images: all, a range of positions,
// or those in no open task; as one task or split between annotators) and, per task, reassign,
// close and reopen. The server checks every value again (POST /api/projects/{id}/tasks/bulk/,
// PATCH /api/tasks/{id}/).

import { patch, post } from "../api.js";
import { h, mount, plural, showError } from "../dom.js";
import { stateBadge } from "./common.js";
import { field } from "./job-forms.js";

const MAX_SPLIT = 50; // as annotation/labeling/assignments.py

/**
 * Fill `body` with the tasks panel. `members` and `datasets` are the other panels' own arrays
 * (they grow when a member or a dataset is added there); call the returned `membersChanged()`
 * or `datasetsChanged()` to refresh the pickers.
 */
export function tasksPanel(body, { project, tasks, datasets, members, admin, ctx }) {
  const names = new Map();
  const list = h("div", { class: "task-list" });

  const render = () => {
    names.clear();
    for (const ds of datasets) names.set(ds.id, ds.name);
    if (!tasks.length) {
      mount(list, h("p", { class: "empty-inline" }, admin ? "No tasks yet — create one below from a dataset's images." : "No tasks yet — an owner or manager assigns images to annotators."));
      return;
    }
    mount(list, taskTable(), annotatorSummary(tasks));
  };

  const taskTable = () =>
    h(
      "table",
      { class: "table tasks-table" },
      h("thead", {}, h("tr", {}, h("th", {}, "Task"), h("th", {}, "Dataset"), h("th", {}, "Assignee"), h("th", {}, "State"), h("th", {}, "Progress"), h("th", {}, h("span", { class: "visually-hidden" }, "Actions")))),
      h(
        "tbody",
        {},
        tasks.map((task) =>
          h(
            "tr",
            { dataset: { taskId: task.id, state: task.state } },
            h("td", { class: "task-name" }, task.name),
            h("td", {}, names.has(task.dataset) ? h("a", { href: `#/datasets/${task.dataset}` }, names.get(task.dataset)) : `#${task.dataset}`),
            h("td", { class: "task-assignee" }, admin ? assigneeSelect(task) : task.assignee_username || h("span", { class: "muted" }, "unassigned")),
            h("td", {}, stateBadge(task.state)),
            h("td", { class: "task-progress" }, progressCell(task.images_done, task.images_total)),
            h("td", { class: "actions" }, task.state === "closed" && !admin ? null : annotateLink(task), admin ? closeButton(task) : null),
          ),
        ),
      ),
    );

  const memberOptions = (selected) => [
    h("option", { value: "", selected: !selected }, "unassigned"),
    ...members.map((m) => h("option", { value: String(m.user_id), selected: m.user_id === selected }, `${m.username} (${m.role})`)),
  ];

  function assigneeSelect(task) {
    const select = h("select", { class: "compact", "aria-label": `Assignee of ${task.name}` }, memberOptions(task.assignee));
    select.addEventListener("change", async () => {
      select.disabled = true;
      try {
        const value = select.value ? Number(select.value) : null;
        Object.assign(task, await patch(`/api/tasks/${task.id}/`, { assignee_id: value }));
        render();
      } catch (error) {
        if (ctx.alive()) showError(error, `Could not reassign ${task.name}`);
        select.value = task.assignee ? String(task.assignee) : "";
      } finally {
        select.disabled = false;
      }
    });
    return select;
  }

  function closeButton(task) {
    const closed = task.state === "closed";
    const label = closed ? "Reopen" : "Close";
    const button = h("button", { type: "button", class: `link ${closed ? "" : "danger"} task-${label.toLowerCase()}`.trim(), "aria-label": `${label} ${task.name}` }, label);
    button.addEventListener("click", async () => {
      if (!closed && !confirm(`Close “${task.name}”? Its annotator will no longer work on it; you can reopen it.`)) return;
      button.disabled = true;
      try {
        Object.assign(task, await patch(`/api/tasks/${task.id}/`, { state: closed ? "todo" : "closed" }));
        render();
      } catch (error) {
        if (ctx.alive()) showError(error, `Could not ${label.toLowerCase()} ${task.name}`);
        button.disabled = false;
      }
    });
    return button;
  }

  render();
  if (!admin) {
    mount(body, list);
    return { membersChanged: () => {}, datasetsChanged: render };
  }
  const form = newTaskForm({ project, datasets, members, memberOptions, ctx, onCreated: (created) => {
    tasks.push(...created);
    render();
  } });
  mount(body, list, form.el);
  return {
    membersChanged: () => {
      render();
      form.membersChanged();
    },
    datasetsChanged: () => {
      render();
      form.datasetsChanged();
    },
  };
}

/** The "New task" form; `onCreated(tasks)` gets the tasks the server made. */
function newTaskForm({ project, datasets, members, memberOptions, ctx, onCreated }) {
  const dataset = h("select", { name: "dataset", "aria-label": "Dataset", required: true });
  const fillDatasets = () => {
    const chosen = dataset.value;
    mount(dataset, datasets.map((ds) => h("option", { value: String(ds.id), selected: String(ds.id) === chosen }, `${ds.name} (${plural(ds.image_count ?? 0, "image")})`)));
  };
  const name = h("input", { name: "task-name", required: true, maxlength: "190", placeholder: "Task name", "aria-label": "Task name" });
  const select = h(
    "select",
    { name: "select", "aria-label": "Images" },
    h("option", { value: "all" }, "all images"),
    h("option", { value: "range" }, "a range (by position)"),
    h("option", { value: "unassigned" }, "those in no open task"),
  );
  const first = h("input", { type: "number", name: "first", min: "1", step: "1", value: "1", "aria-label": "First image" });
  const last = h("input", { type: "number", name: "last", min: "1", step: "1", value: "50", "aria-label": "Last image" });
  const range = h("span", { class: "task-range", hidden: true }, field("From #", first), field("to #", last));
  const how = h(
    "select",
    { name: "how", "aria-label": "Split" },
    h("option", { value: "one" }, "one task"),
    h("option", { value: "people" }, "split between annotators"),
    h("option", { value: "parts" }, "split into parts, unassigned"),
  );
  const assignee = h("select", { name: "assignee", "aria-label": "Assignee" });
  const one = h("span", {}, field("Assignee", assignee));
  const parts = h("input", { type: "number", name: "parts", min: "2", max: String(MAX_SPLIT), step: "1", value: "2", "aria-label": "Parts" });
  const partsBox = h("span", { hidden: true }, field("Parts", parts));
  const people = h("fieldset", { class: "task-people", hidden: true }, h("legend", { class: "small muted" }, "Annotators (one task each)"));
  const button = h("button", { type: "submit", class: "primary" }, "Create task");

  const sync = () => {
    range.hidden = select.value !== "range";
    one.hidden = how.value !== "one";
    partsBox.hidden = how.value !== "parts";
    people.hidden = how.value !== "people";
    button.textContent = how.value === "one" ? "Create task" : "Create tasks";
  };
  const fillMembers = () => {
    const chosen = assignee.value ? Number(assignee.value) : null;
    mount(assignee, memberOptions(chosen));
    const ticked = new Set([...people.querySelectorAll("input:checked")].map((box) => Number(box.value)));
    const boxes = [...members]
      .sort((a, b) => (a.role === "annotator" ? 0 : 1) - (b.role === "annotator" ? 0 : 1))
      .map((m) => h("label", { class: "task-person" }, h("input", { type: "checkbox", value: String(m.user_id), checked: ticked.has(m.user_id), "aria-label": `A part for ${m.username}` }), ` ${m.username} `, h("span", { class: "muted small" }, m.role)));
    mount(people, h("legend", { class: "small muted" }, "Annotators (one task each)"), boxes);
  };
  select.addEventListener("change", sync);
  how.addEventListener("change", sync);
  fillMembers();
  fillDatasets();
  sync();

  const form = h(
    "form",
    { class: "inline-form task-form", "aria-label": "New task" },
    field("Dataset", dataset),
    field("Name", name),
    field("Images", select),
    range,
    field("As", how),
    one,
    partsBox,
    people,
    button,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!name.value.trim() || !dataset.value) return;
    const payload = { dataset_id: Number(dataset.value), name: name.value.trim(), select: select.value };
    if (select.value === "range") Object.assign(payload, { first: Number(first.value), last: Number(last.value) });
    if (how.value === "one" && assignee.value) payload.assignee_ids = [Number(assignee.value)];
    if (how.value === "parts") payload.parts = Number(parts.value);
    if (how.value === "people") {
      payload.assignee_ids = [...people.querySelectorAll("input:checked")].map((box) => Number(box.value));
      if (!payload.assignee_ids.length) {
        showError("Tick the annotators to split the images between");
        return;
      }
    }
    button.disabled = true;
    try {
      const created = await post(`/api/projects/${project.id}/tasks/bulk/`, payload);
      name.value = "";
      onCreated(created);
    } catch (error) {
      if (ctx.alive()) showError(error, "Could not create the task");
    } finally {
      button.disabled = false;
    }
  });
  const none = h("p", { class: "muted small" }, "Create a dataset first: a task is a set of its images.");
  const showForm = () => {
    form.hidden = !datasets.length;
    none.hidden = datasets.length > 0;
  };
  showForm();
  return {
    el: h("div", {}, none, form),
    membersChanged: fillMembers,
    datasetsChanged: () => {
      fillDatasets();
      showForm();
    },
  };
}

/** "done / total" images with a small bar. */
function progressCell(done, total) {
  done = done || 0;
  total = total || 0;
  const pct = total ? Math.round((100 * done) / total) : 0;
  return h(
    "div",
    { class: "progress-wrap", title: `${pct} % of the images are done (marked done by the annotator, or a proposal accepted in review)` },
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
