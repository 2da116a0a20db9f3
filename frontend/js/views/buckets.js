// Buckets of the team's own (issue 21), for project owners and managers only:
// - the project page's "Bucket sources" panel: the project's sources (GET/POST
//   /api/projects/{id}/bucket-sources/), a Check per source (POST /api/bucket-sources/{id}/check/
//   lists one page) and Delete (refused with 409 while datasets read images from it). The
//   credentials go in through the form and never come back: a source shows "set …ABCD" or
//   "anonymous", and the secret input is never filled in.
//   Edit (PATCH /api/bucket-sources/{id}/) fills the same form with the source; its keys change
//   only when both are typed again (key rotation), otherwise they stay as stored.
// - the dataset page's "Attach from bucket" panel is in bucket-attach.js.
// A refusal names the field to fix (error.detail.field, or a serializer's field errors): the
// message is shown at that field.

import { ApiError, del, get, patch, post } from "../api.js";
import { h, mount, plural, showError } from "../dom.js";
import { section } from "./common.js";

const PAGE_MAX = 1000; // a check lists one page of at most this many keys
export const SOURCE_FIELDS = ["name", "endpoint_url", "bucket", "region", "prefix", "access_key_id", "secret_access_key"];

/** The field a refusal names, if it is one of `names` (see the header). */
export function fieldOf(error, names) {
  const detail = (error instanceof ApiError && error.detail) || {};
  if (typeof detail.field === "string" && names.includes(detail.field)) return detail.field;
  const listed = Object.keys(detail).find((key) => names.includes(key));
  return listed || null;
}

/** A labelled input with room for the error of its field: {el, input, error}. */
export function labelled(text, input, hint = "") {
  const error = h("span", { class: "field-error small", "aria-live": "polite" });
  return { input, error, el: h("label", { class: "bucket-field", title: hint || null }, h("span", { class: "small muted" }, text), input, error) };
}

/** Show `error` at its field among `fields` ({name: labelled}), else in `fallback`. */
export function showFieldError(error, fields, fallback) {
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

export function clearFieldErrors(fields, fallback) {
  for (const f of Object.values(fields)) {
    f.error.textContent = "";
    f.input.removeAttribute("aria-invalid");
  }
  fallback.textContent = "";
}

const endpointText = (source) => source.endpoint_url || "AWS S3";
const credentialsText = (source) => (source.credentials_set ? `set ${source.access_key_id_hint}`.trim() : "anonymous");
export const where = (source) => `${source.bucket}${source.prefix ? `/${source.prefix}` : ""}`;

// ---- Project page: the sources --------------------------------------------------------------

/** The "Bucket sources" section of the project page (call only for owners and managers). */
export function bucketSourcesPanel(project, ctx) {
  let sources = [];
  const notes = new Map(); // source id -> {ok, text} of its last check or refusal
  const table = h("table", { class: "table bucket-table", "aria-label": "Bucket sources" });
  const editor = sourceForm(project, ctx, (source) => {
    const at = sources.findIndex((s) => s.id === source.id);
    if (at >= 0) sources[at] = source; // edited
    else sources.push(source);
    render();
    check(source); // a wrong bucket or refused keys show at once, in the source's row
  });
  const body = h("div", {}, table, editor.form);
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
    const editButton = h("button", { type: "button", class: "small-button", "aria-label": `Edit ${source.name}`, onclick: () => editor.edit(source) }, "Edit");
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
      h("td", { class: "actions" }, checkButton, " ", editButton, " ", deleteButton),
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

/** The form that adds a source, or edits one (`edit(source)`); `onSaved(source)` after the
 * server stored it. Editing sends the keys only when both are typed (a rotation); left empty,
 * the stored ones stay. Returns {form, edit}. */
function sourceForm(project, ctx, onSaved) {
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
  const title = h("h3", { class: "bucket-form-title" }, "Add bucket source");
  const hint = h("p", { class: "muted small" });
  const submit = h("button", { type: "submit", class: "primary" }, "Add bucket source");
  const cancel = h("button", { type: "button", class: "secondary", hidden: true, onclick: () => reset("") }, "Cancel edit");
  const form = h(
    "form",
    { class: "bucket-form", "aria-label": "Add bucket source", autocomplete: "off" },
    title,
    h("div", { class: "bucket-form-grid" }, Object.values(fields).map((f) => f.el)),
    hint,
    h("div", { class: "button-row" }, submit, " ", cancel),
    status,
  );
  let editing = null; // the source being edited, or null: adding

  function reset(message) {
    editing = null;
    for (const [name, f] of Object.entries(fields)) f.input.value = name === "region" ? "us-east-1" : "";
    clearFieldErrors(fields, status);
    status.textContent = message;
    title.textContent = submit.textContent = "Add bucket source";
    form.setAttribute("aria-label", "Add bucket source");
    hint.textContent = "The keys are stored encrypted and never shown again; leave both empty for a public bucket.";
    cancel.hidden = true;
  }

  function edit(source) {
    reset("");
    editing = source;
    for (const name of ["name", "endpoint_url", "bucket", "region", "prefix"]) fields[name].input.value = source[name] ?? "";
    title.textContent = `Edit “${source.name}”`;
    form.setAttribute("aria-label", "Edit bucket source");
    submit.textContent = "Save changes";
    hint.textContent = `Keys: ${credentialsText(source)}. Type both to replace them; leave both empty to keep them.`;
    cancel.hidden = false;
    fields.name.input.focus();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(fields, status);
    status.classList.remove("error-text");
    const body = {};
    for (const [name, f] of Object.entries(fields)) body[name] = f.input.value.trim();
    if (!body.region) delete body.region; // the server's default
    if (editing && !body.access_key_id && !body.secret_access_key) {
      delete body.access_key_id; // both empty while editing: keep the stored keys
      delete body.secret_access_key;
    }
    submit.disabled = true;
    try {
      const source = editing
        ? await patch(`/api/bucket-sources/${editing.id}/`, body)
        : await post(`/api/projects/${project.id}/bucket-sources/`, body);
      if (!ctx.alive()) return;
      reset(`${editing ? "Saved" : "Added"} “${source.name}”.`);
      onSaved(source);
    } catch (error) {
      if (!ctx.alive()) return;
      fields.secret_access_key.input.value = ""; // never kept around after a refusal either
      status.classList.add("error-text");
      showFieldError(error, fields, status);
    } finally {
      submit.disabled = false;
    }
  });
  reset("");
  return { form, edit };
}
