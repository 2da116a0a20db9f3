// #/projects/{id}/review — the review queue of pseudo labels (batch methods' proposals), best score first.
// Each item shows its mask over a crop of the image. Keys: A accept, R reject, F needs fix,
// ←/→ previous/next item. Bulk: accept every pending one at or above a score, reject every
// pending one at or below it, after a confirm that says how many.
// "Needs fix" sends the mask to the person chosen in "Fix by" (default: the one annotator of
// a task holding the image; the server says when there is none). The page is live: pushes on
// the project socket (new pseudo labels from a job, other reviewers' decisions, corrected
// masks back from annotators) refresh the counts and the page, at most once a second.

import { get, post } from "../api.js";
import { h, mount, plural, showError } from "../dom.js";
import { projectEvents } from "../events.js";
import { paintOverlay } from "../overlay.js";
import { breadcrumbs, hexToRgb, roleBadge, section, stateBadge } from "./common.js";

export const REVIEW_ROLES = new Set(["owner", "manager", "reviewer"]);
const STATES = ["pending", "accepted", "rejected", "needs_fix"];
const ACTIONS = { accept: "Accept", reject: "Reject", needs_fix: "Needs fix" };
const KEYS = { a: "accept", r: "reject", f: "needs_fix" };
const PAGE = 24;
const THUMB = 180; // px, the longer side of an item's crop
const PSEUDO_COLOR = [255, 140, 0];
const FIXER_ROLES = new Set(["owner", "manager", "annotator"]);
const LIVE_EVENTS = ["instances.reviewed", "instance.created", "instance.deleted"];
const REFRESH_MS = 1000; // at most one refresh per second, however many pushes arrive

export async function reviewView(root, { id }, ctx) {
  document.title = "Review · Maskwright";
  mount(root, h("p", { class: "muted" }, "Loading the review queue…"));
  let project = null;
  try {
    project = await get(`/api/projects/${id}/`, { signal: ctx.signal });
  } catch (error) {
    if (!ctx.alive() || error.name === "AbortError") return;
    if (error.status !== 404) throw error;
  }
  if (!ctx.alive()) return;
  if (!project || !REVIEW_ROLES.has(project.role)) {
    notFound(root);
    return;
  }
  document.title = `Review · ${project.name} · Maskwright`;
  const labels = new Map((project.labels || []).map((l) => [l.id, l]));
  const base = `/api/projects/${id}/review/`;
  const view = { rows: [], count: 0, offset: 0, index: 0, images: new Map(), mine: new Set() };
  const members = await get(`/api/projects/${id}/members/`, { signal: ctx.signal }).catch(() => []);
  if (!ctx.alive()) return;

  const countsBody = h("div", {}, h("p", { class: "muted" }, "Loading counts…"));
  // The source filter offers the sources of the project's pseudo labels (from the counts).
  const source = select("Source", [""], "", sourceText);
  const state = select("State", ["", ...STATES], "pending", (v) => (v ? v.replace("_", " ") : "any state"));
  const minScore = h("input", { type: "number", min: "0", max: "1", step: "0.05", placeholder: "0.0", "aria-label": "Minimum score", class: "score-input" });
  const filters = h("form", { class: "inline-form review-filters", "aria-label": "Filters" }, source, state, h("label", { class: "muted small" }, "min score ", minScore), h("button", { type: "submit" }, "Apply"));
  const threshold = h("input", { type: "number", min: "0", max: "1", step: "0.05", value: "0.5", "aria-label": "Score threshold", class: "score-input" });
  const bulkAccept = h("button", { type: "button", class: "primary" }, "Accept all pending ≥ t");
  const bulkReject = h("button", { type: "button", class: "danger" }, "Reject all pending ≤ t");
  const bulk = h("div", { class: "inline-form review-bulk", role: "group", "aria-label": "Bulk review" }, h("label", { class: "muted small" }, "threshold t ", threshold), bulkAccept, bulkReject, h("span", { class: "muted small" }, "(within the chosen source)"));
  const fixBy = h(
    "select",
    { "aria-label": "Fix by", class: "compact fix-by" },
    h("option", { value: "" }, "the image's task annotator"),
    members.filter((m) => FIXER_ROLES.has(m.role)).map((m) => h("option", { value: String(m.user_id) }, `${m.username} (${m.role})`)),
  );
  const fixRow = h("div", { class: "inline-form review-fix-by" }, h("label", { class: "muted small" }, "Needs fix goes to ", fixBy));
  const live = h("span", { class: "muted small live-note" });
  const list = h("ol", { class: "review-list", "aria-label": "Pseudo labels" });
  const position = h("span", { class: "muted small review-position" });
  const prevPage = h("button", { type: "button", class: "small-button", onclick: () => load(view.offset - PAGE) }, "← Page");
  const nextPage = h("button", { type: "button", class: "small-button", onclick: () => load(view.offset + PAGE) }, "Page →");

  mount(
    root,
    breadcrumbs([["Projects", "#/"], [project.name, `#/projects/${id}`], ["Review"]]),
    h("div", { class: "page-head" }, h("h1", {}, "Review pseudo labels"), roleBadge(project.role), h("p", { class: "page-desc" }, "Keys: A accept · R reject · F needs fix · ←/→ move")),
    section("Counts", countsBody, live),
    section("Queue", h("div", {}, filters, bulk, fixRow, h("div", { class: "button-row" }, prevPage, position, nextPage), list)),
  );

  const query = (extra = {}) => {
    const params = new URLSearchParams();
    if (source.value) params.set("source", source.value);
    for (const [k, v] of Object.entries(extra)) if (v !== "" && v !== null && v !== undefined) params.set(k, v);
    return params.toString();
  };

  async function refreshCounts() {
    const rows = await get(`${base}counts/`, { signal: ctx.signal });
    if (!ctx.alive()) return;
    const pseudo = pseudoSources(rows);
    countsTable(countsBody, rows, pseudo);
    sourceOptions(source, pseudo);
  }

  async function load(offset = 0) {
    view.offset = Math.max(0, offset);
    const q = query({ state: state.value, min_score: minScore.value, limit: PAGE, offset: view.offset });
    const page = await get(`${base}?${q}`, { signal: ctx.signal });
    if (!ctx.alive()) return;
    const selectedId = view.rows[view.index]?.id;
    view.rows = page.results;
    view.count = page.count;
    // Keep the selection on the same pseudo label when a refresh moved it on the page.
    const kept = view.rows.findIndex((row) => row.id === selectedId);
    view.index = kept >= 0 ? kept : Math.min(view.index, Math.max(0, view.rows.length - 1));
    renderList();
  }

  function renderList() {
    const first = view.count ? view.offset + 1 : 0;
    position.textContent = `${first}–${view.offset + view.rows.length} of ${plural(view.count, "pseudo label")}`;
    prevPage.disabled = view.offset === 0;
    nextPage.disabled = view.offset + view.rows.length >= view.count;
    if (!view.rows.length) {
      mount(list, h("li", { class: "empty-inline" }, "No pseudo labels match these filters."));
      return;
    }
    mount(list, view.rows.map((row, i) => item(row, i)));
    select_(view.index, false);
  }

  function item(row, i) {
    const canvas = h("canvas", { class: "review-thumb", "aria-label": `Pseudo label ${row.id} on image ${row.image}` });
    drawThumb(canvas, row);
    const label = row.label ? labels.get(row.label) : null;
    const buttons = Object.entries(ACTIONS).map(([action, text]) =>
      h("button", { type: "button", class: `small-button review-${action}`, onclick: (e) => { e.stopPropagation(); act(i, action); } }, text),
    );
    return h(
      "li",
      { class: "review-item", tabindex: "-1", dataset: { instanceId: row.id, state: row.review_state }, onclick: () => select_(i) },
      canvas,
      h("div", { class: "review-text" },
        h("div", {}, h("strong", {}, row.score === null ? "no score" : Number(row.score).toFixed(2)), " ", stateBadge(row.review_state)),
        h("div", { class: "muted small" }, `${row.source}${row.model_name ? ` (${row.model_name})` : ""} · ${label ? label.name : "no label"}`),
        h("div", { class: "muted small" }, h("a", { href: `#/images/${row.image}` }, `image ${row.image}`), ` · #${row.id}`),
        row.review_state === "needs_fix" && row.assignee_username ? h("div", { class: "muted small fix-assignee" }, `to fix: ${row.assignee_username}`) : null,
        h("div", { class: "review-actions" }, buttons),
      ),
    );
  }

  function select_(i, scroll = true) {
    if (!view.rows.length) return;
    view.index = Math.max(0, Math.min(view.rows.length - 1, i));
    [...list.children].forEach((li, j) => li.classList.toggle("selected", j === view.index));
    const li = list.children[view.index];
    if (scroll && li?.scrollIntoView) li.scrollIntoView({ block: "nearest" });
  }

  async function act(i, action) {
    const row = view.rows[i];
    if (!row) return;
    const body = { action, version: row.version };
    if (action === "needs_fix" && fixBy.value) body.assignee = Number(fixBy.value);
    try {
      view.mine.add(row.id); // our own push: no need to reload the page for it
      const inst = await post(`/api/instances/${row.id}/review/`, body);
      const fixer = members.find((m) => m.user_id === inst.assignee);
      Object.assign(row, { review_state: inst.review_state, version: inst.version, assignee: inst.assignee ?? null, assignee_username: fixer ? fixer.username : null });
    } catch (error) {
      view.mine.delete(row.id);
      showError(error, `Could not ${ACTIONS[action].toLowerCase()} pseudo label ${row.id}`);
      if (error.status === 409) await load(view.offset);
      return;
    }
    if (!ctx.alive()) return;
    list.children[i]?.replaceWith(item(row, i));
    select_(i + 1);
    await refreshCounts();
  }

  async function bulkAct(action) {
    const t = threshold.value;
    if (t === "" || Number.isNaN(Number(t))) {
      showError("Set a score threshold first");
      return;
    }
    const bound = action === "accept" ? { min_score: t } : { max_score: t };
    const probe = await get(`${base}?${query({ state: "pending", ...bound, limit: 1 })}`, { signal: ctx.signal });
    const what = `${plural(probe.count, "pending pseudo label")}${source.value ? ` from ${source.value}` : ""} with score ${action === "accept" ? "≥" : "≤"} ${t}`;
    if (!probe.count) {
      showError(`No ${what.replace(/^0 /, "")}`);
      return;
    }
    if (!window.confirm(`${ACTIONS[action]} ${what}?`)) return;
    const body = { action, ...bound };
    if (source.value) body.source = source.value;
    const done = await post(`${base}bulk/`, body);
    bulk.dataset.changed = String(done.changed);
    await Promise.all([refreshCounts(), load(view.offset)]);
  }

  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    view.index = 0;
    load(0).catch((error) => showError(error, "Could not load the queue"));
  });
  bulkAccept.addEventListener("click", () => bulkAct("accept").catch((e) => showError(e, "Bulk accept failed")));
  bulkReject.addEventListener("click", () => bulkAct("reject").catch((e) => showError(e, "Bulk reject failed")));

  const onKey = (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (/^(INPUT|SELECT|TEXTAREA)$/.test(event.target?.tagName || "")) return;
    const key = event.key.toLowerCase();
    if (KEYS[key]) act(view.index, KEYS[key]);
    else if (event.key === "ArrowRight") select_(view.index + 1);
    else if (event.key === "ArrowLeft") select_(view.index - 1);
    else return;
    event.preventDefault();
  };
  document.addEventListener("keydown", onKey);
  ctx.onCleanup(() => document.removeEventListener("keydown", onKey));

  // The mask over a crop of its image around the box (pseudo labels are often small).
  function drawThumb(canvas, row) {
    const [bx, by, bw, bh] = row.bbox;
    const pad = Math.max(16, 0.5 * Math.max(bw, bh));
    const x0 = Math.max(0, Math.floor(bx - pad));
    const y0 = Math.max(0, Math.floor(by - pad));
    const x1 = Math.min(row.width, Math.ceil(bx + bw + pad));
    const y1 = Math.min(row.height, Math.ceil(by + bh + pad));
    const scale = THUMB / Math.max(x1 - x0, y1 - y0, 1);
    canvas.width = Math.max(1, Math.round((x1 - x0) * scale));
    canvas.height = Math.max(1, Math.round((y1 - y0) * scale));
    const label = row.label ? labels.get(row.label) : null;
    const color = label ? hexToRgb(label.color) : PSEUDO_COLOR;
    const { data, errors } = paintOverlay([row], row.width, row.height, () => color, 0.4);
    if (errors.length) canvas.dataset.error = String(errors[0].error.message);
    const overlay = document.createElement("canvas");
    overlay.width = row.width;
    overlay.height = row.height;
    overlay.getContext("2d").putImageData(data, 0, 0);
    imageOf(row.image)
      .then((img) => {
        const g = canvas.getContext("2d");
        g.imageSmoothingEnabled = scale < 1;
        g.drawImage(img, x0, y0, x1 - x0, y1 - y0, 0, 0, canvas.width, canvas.height);
        g.drawImage(overlay, x0, y0, x1 - x0, y1 - y0, 0, 0, canvas.width, canvas.height);
        canvas.dataset.state = "drawn";
      })
      .catch((error) => {
        canvas.dataset.state = "failed";
        if (ctx.alive()) showError(error, `Could not load image ${row.image}`);
      });
  }

  function imageOf(imageId) {
    if (!view.images.has(imageId)) {
      const img = new Image();
      img.src = `/api/images/${imageId}/file`;
      view.images.set(imageId, img.decode().then(() => img, () => { throw new Error(`image ${imageId} did not decode`); }));
    }
    return view.images.get(imageId);
  }

  // ---- Live: pushes from the project socket, throttled to one refresh a second ----------------
  const events = projectEvents(id);
  let timer = null;
  let last = 0;
  let rowsToo = false;
  function schedule(reloadRows) {
    rowsToo = rowsToo || reloadRows;
    if (timer) return;
    timer = setTimeout(async () => {
      timer = null;
      last = Date.now();
      const reload = rowsToo;
      rowsToo = false;
      try {
        await Promise.all([refreshCounts(), reload ? load(view.offset) : null]);
        list.dataset.refreshed = String(Number(list.dataset.refreshed || 0) + 1);
      } catch (error) {
        if (ctx.alive() && error.name !== "AbortError") showError(error, "Could not refresh the queue");
      }
    }, Math.max(0, last + REFRESH_MS - Date.now()));
  }
  const offs = LIVE_EVENTS.map((name) =>
    events.on(name, (payload) => {
      const ids = payload?.ids || [];
      const ours = name === "instances.reviewed" && ids.length > 0 && ids.every((i) => view.mine.delete(i));
      schedule(!ours);
    }),
  );
  let wasOpen = false;
  const offState = events.onState((open) => {
    live.textContent = open ? "live" : "";
    if (open && wasOpen) schedule(true); // catch up with what happened while the socket was down
    wasOpen = wasOpen || open;
  });
  ctx.onCleanup(() => {
    offs.forEach((off) => off());
    offState();
    clearTimeout(timer);
    events.close();
  });

  await Promise.all([refreshCounts(), load(0)]);
}

function select(label, values, value, text) {
  return h("select", { "aria-label": label, class: "compact" }, values.map((v) => h("option", { value: v, selected: v === value }, text(v))));
}

const sourceText = (v) => v || "any pseudo source";

/** The sources that have pseudo labels in the project, by name (counts rows say how many). */
function pseudoSources(rows) {
  return [...new Set(rows.filter((r) => r.pseudo > 0).map((r) => r.source))].sort();
}

/** The source filter's options: any, then each pseudo-label source; the chosen one stays. */
function sourceOptions(el, sources) {
  const chosen = el.value;
  const values = ["", ...sources];
  if (chosen && !sources.includes(chosen)) values.push(chosen);
  mount(el, values.map((v) => h("option", { value: v, selected: v === chosen }, sourceText(v))));
  el.value = chosen;
}

/** Counts by source × review state, with a total per source; pseudo-label sources first. */
function countsTable(body, rows, pseudo) {
  const by = new Map();
  for (const r of rows) {
    if (!by.has(r.source)) by.set(r.source, {});
    by.get(r.source)[r.review_state] = r.count;
  }
  if (!by.size) {
    mount(body, h("p", { class: "empty-inline" }, "No masks in this project yet."));
    return;
  }
  const sources = [...by.keys()].sort((a, b) => (pseudo.includes(b) - pseudo.includes(a)) || a.localeCompare(b));
  mount(
    body,
    h(
      "table",
      { class: "table review-counts" },
      h("thead", {}, h("tr", {}, h("th", {}, "Source"), STATES.map((s) => h("th", { class: "num" }, s.replace("_", " "))), h("th", { class: "num" }, "total"))),
      h(
        "tbody",
        {},
        sources.map((src) => {
          const c = by.get(src);
          const total = STATES.reduce((sum, s) => sum + (c[s] || 0), 0);
          return h("tr", { dataset: { source: src } }, h("td", {}, src), STATES.map((s) => h("td", { class: "num", dataset: { state: s } }, String(c[s] || 0))), h("td", { class: "num", dataset: { state: "total" } }, String(total)));
        }),
      ),
    ),
  );
}

function notFound(root) {
  document.title = "Not found · Maskwright";
  root.dataset.view = "not-found";
  mount(root, h("section", { class: "empty-page" }, h("h1", {}, "Page not found"), h("p", {}, "There is no review queue here for you. ", h("a", { href: "#/" }, "Back to the projects"), ".")));
}
