// #/ — the projects the user is a member of, and a form to create one.

import { get, post } from "../api.js";
import { h, mount, showError } from "../dom.js";
import { navigate } from "../router.js";
import { labelChip, roleBadge } from "./common.js";

export async function projectsView(root, _params, ctx) {
  document.title = "Projects · Maskwright";
  const list = h("div", { class: "card-grid", "aria-busy": "true" }, h("p", { class: "muted" }, "Loading projects…"));
  const nameInput = h("input", { name: "name", required: true, maxlength: "200", placeholder: "Project name", "aria-label": "Project name" });
  const button = h("button", { type: "submit", class: "primary" }, "Create project");
  const form = h(
    "form",
    { class: "inline-form", "aria-label": "New project", onsubmit: (e) => create(e) },
    h("h2", { class: "form-title" }, "New project"),
    nameInput,
    button,
  );

  async function create(event) {
    event.preventDefault();
    const name = nameInput.value.trim();
    if (!name) return;
    button.disabled = true;
    try {
      const project = await post("/api/projects/", { name, description: "" });
      navigate(`#/projects/${project.id}`);
    } catch (error) {
      showError(error, "Could not create the project");
    } finally {
      button.disabled = false;
    }
  }

  mount(
    root,
    h("div", { class: "page-head" }, h("h1", {}, "Projects")),
    h("section", { class: "panel" }, form),
    list,
  );

  const projects = await get("/api/projects/", { signal: ctx.signal });
  if (!ctx.alive()) return;
  list.removeAttribute("aria-busy");
  if (!projects.length) {
    mount(list, h("div", { class: "empty" }, "No projects yet — create one with the form above, or ask a project owner to add you to theirs."));
    return;
  }
  mount(list, projects.map(projectCard));
}

function projectCard(project) {
  const labels = project.labels || [];
  return h(
    "a",
    { class: "card project-card", href: `#/projects/${project.id}`, dataset: { projectId: project.id } },
    h("div", { class: "card-head" }, h("h3", { class: "card-title" }, project.name), roleBadge(project.role)),
    project.description ? h("p", { class: "card-desc" }, project.description) : null,
    h(
      "div",
      { class: "chips" },
      labels.length ? labels.map((label) => labelChip(label)) : h("span", { class: "muted small" }, "No labels yet"),
    ),
  );
}
