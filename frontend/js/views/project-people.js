// The labels and members panels of the project page.

import { del, post } from "../api.js";
import { h, mount, showError } from "../dom.js";
import { labelChip, ROLES, roleBadge } from "./common.js";

const PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45", "#469990", "#9a6324", "#800000", "#000075"];

export function labelsPanel(body, project, admin, ctx) {
  const labels = [...(project.labels || [])];
  const chips = h("div", { class: "chips" });

  const render = () => {
    if (!labels.length) {
      mount(chips, h("span", { class: "empty-inline" }, admin ? "No labels yet — add the classes you will annotate." : "No labels yet."));
      return;
    }
    mount(
      chips,
      labels.map((label) =>
        labelChip(label, admin ? h("button", { type: "button", class: "chip-x", "aria-label": `Delete label ${label.name}`, title: "Delete label", onclick: () => remove(label) }, "×") : null),
      ),
    );
  };

  async function remove(label) {
    if (!confirm(`Delete the label “${label.name}”?`)) return;
    try {
      await del(`/api/projects/${project.id}/labels/${label.id}/`);
      labels.splice(labels.indexOf(label), 1);
      render();
    } catch (error) {
      if (ctx.alive()) showError(error, "Could not delete the label");
    }
  }

  render();
  if (!admin) {
    mount(body, chips);
    return;
  }
  const name = h("input", { name: "label-name", required: true, maxlength: "100", placeholder: "Label name", "aria-label": "Label name" });
  const color = h("input", { type: "color", name: "label-color", value: PALETTE[labels.length % PALETTE.length], "aria-label": "Label colour", title: "Label colour" });
  const button = h("button", { type: "submit", class: "primary" }, "Add label");
  const form = h("form", { class: "inline-form", "aria-label": "New label" }, color, name, button);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!name.value.trim()) return;
    button.disabled = true;
    try {
      const label = await post(`/api/projects/${project.id}/labels/`, { name: name.value.trim(), color: color.value });
      labels.push(label);
      name.value = "";
      color.value = PALETTE[labels.length % PALETTE.length];
      render();
    } catch (error) {
      if (ctx.alive()) showError(error, "Could not add the label");
    } finally {
      button.disabled = false;
    }
  });
  mount(body, chips, form);
}

/**
 * The members table; owners and managers also get "Add member" (an existing account, by
 * username) and "Create account" (a new account with an initial password, added with a role).
 * `onChange()` runs after the list changed (the tasks panel's pickers follow it).
 */
export function membersPanel(body, project, members, admin, ctx, onChange = () => {}) {
  const table = h("table", { class: "table" });

  const roleCell = (member) => {
    if (!admin) return roleBadge(member.role);
    const select = h(
      "select",
      { "aria-label": `Role of ${member.username}`, class: "compact" },
      ROLES.map((role) => h("option", { value: role, selected: role === member.role }, role)),
    );
    select.addEventListener("change", async () => {
      try {
        const updated = await post(`/api/projects/${project.id}/members/`, { username: member.username, role: select.value });
        Object.assign(member, updated);
        onChange();
      } catch (error) {
        select.value = member.role;
        if (ctx.alive()) showError(error, `Could not change the role of ${member.username}`);
      }
    });
    return select;
  };

  async function remove(member) {
    if (!confirm(`Remove ${member.username} from the project?`)) return;
    try {
      await del(`/api/projects/${project.id}/members/${member.id}/`);
      members.splice(members.indexOf(member), 1);
      render();
      onChange();
    } catch (error) {
      if (ctx.alive()) showError(error, `Could not remove ${member.username}`);
    }
  }

  const render = () =>
    mount(
      table,
      h(
        "tbody",
        {},
        members.map((member) =>
          h(
            "tr",
            { dataset: { memberId: member.id } },
            h("td", {}, member.username),
            h("td", {}, roleCell(member)),
            admin ? h("td", { class: "actions" }, h("button", { type: "button", class: "link danger", onclick: () => remove(member) }, "Remove")) : null,
          ),
        ),
      ),
    );
  render();

  if (!admin) {
    mount(body, table);
    return;
  }
  const username = h("input", { name: "username", required: true, placeholder: "Username", "aria-label": "Username", autocomplete: "off" });
  const role = h("select", { name: "role", "aria-label": "Role" }, ROLES.map((r) => h("option", { value: r, selected: r === "annotator" }, r)));
  const button = h("button", { type: "submit", class: "primary" }, "Add member");
  const form = h("form", { class: "inline-form", "aria-label": "Add member" }, username, role, button);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!username.value.trim()) return;
    button.disabled = true;
    try {
      const member = await post(`/api/projects/${project.id}/members/`, { username: username.value.trim(), role: role.value });
      const existing = members.find((m) => m.id === member.id);
      if (existing) Object.assign(existing, member);
      else members.push(member);
      username.value = "";
      render();
      onChange();
    } catch (error) {
      if (ctx.alive()) showError(error, "Could not add the member");
    } finally {
      button.disabled = false;
    }
  });
  const added = (member) => {
    members.push(member);
    render();
    onChange();
  };
  mount(body, table, form, accountForm(project, ctx, added));
}

/** "Create account": a new user with an initial password (checked by the server's password
 * rules), added to the project with a role. A manager is not offered the owner role. */
function accountForm(project, ctx, added) {
  const roles = ROLES.filter((r) => project.role === "owner" || r !== "owner");
  const username = h("input", { name: "new-username", required: true, maxlength: "150", placeholder: "New username", "aria-label": "New username", autocomplete: "off" });
  const password = h("input", { name: "new-password", type: "password", required: true, maxlength: "128", placeholder: "Initial password", "aria-label": "Initial password", autocomplete: "new-password" });
  const role = h("select", { name: "new-role", "aria-label": "Role of the new account" }, roles.map((r) => h("option", { value: r, selected: r === "annotator" }, r)));
  const button = h("button", { type: "submit", class: "secondary" }, "Create account");
  const note = h("p", { class: "muted small account-note", role: "status" });
  const form = h("form", { class: "inline-form account-form", "aria-label": "Create account" }, username, password, role, button);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!username.value.trim() || !password.value) return;
    button.disabled = true;
    try {
      const member = await post(`/api/projects/${project.id}/accounts/`, { username: username.value.trim(), password: password.value, role: role.value });
      note.textContent = `Created ${member.username} (${member.role}): give them the password to sign in at ${location.origin}/login/.`;
      username.value = "";
      password.value = "";
      added(member);
    } catch (error) {
      if (ctx.alive()) showError(error, "Could not create the account");
    } finally {
      button.disabled = false;
    }
  });
  return h("div", {}, form, note);
}
