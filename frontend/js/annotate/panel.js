// The side panel's object list: one row per object (visibility, colour, label select, area,
// delete). Rows are keyed by object id and replaced one at a time, so a mask reply touches
// one row, not 200.

import { h, mount, plural } from "../dom.js";
import { cssColor, objectColor } from "./layers.js";

export class ObjectList {
  /** handlers: select(id), setLabel(id, labelId|null), toggle(id, visible), remove(id) */
  constructor(handlers) {
    this.handlers = handlers;
    this.rows = new Map();
    this.count = h("span", { class: "muted small object-count" }, "");
    this.list = h("ul", { class: "object-list", role: "listbox", "aria-label": "Objects" });
    this.empty = h("p", { class: "empty-inline small" }, "No objects yet — click on the image, or press N.");
    this.el = h("div", { class: "object-list-wrap" }, this.list, this.empty);
    this.session = null;
  }

  render(session) {
    this.session = session;
    this.rows.clear();
    const objects = [...session.objects.values()].sort((a, b) => a.id - b.id);
    mount(this.list, objects.map((obj) => this.row(obj)));
    this.counts();
  }

  counts() {
    const n = this.session ? this.session.objects.size : 0;
    this.count.textContent = plural(n, "object");
    this.empty.hidden = n > 0;
  }

  /** Redraw one object's row (added if new). */
  update(obj) {
    const old = this.rows.get(obj.id);
    const row = this.row(obj);
    if (old) old.replaceWith(row);
    else this.insert(row, obj.id);
    this.counts();
  }

  insert(row, id) {
    const after = [...this.rows.keys()].filter((k) => k > id).sort((a, b) => a - b)[0];
    const next = after === undefined ? null : this.rows.get(after);
    this.list.insertBefore(row, next && next !== row ? next : null);
  }

  remove(id) {
    this.rows.get(id)?.remove();
    this.rows.delete(id);
    this.counts();
  }

  /** Mark the selected row (and scroll it into view). */
  select(id) {
    for (const [key, row] of this.rows) {
      const on = key === id;
      row.classList.toggle("selected", on);
      row.setAttribute("aria-selected", on ? "true" : "false");
      if (on) row.scrollIntoView?.({ block: "nearest" });
    }
  }

  row(obj) {
    const session = this.session;
    const { select, setLabel, toggle, remove } = this.handlers;
    const visible = h("input", { type: "checkbox", checked: !obj.hidden, title: "Show / hide", "aria-label": `Show object ${obj.id}` });
    visible.addEventListener("click", (e) => e.stopPropagation());
    visible.addEventListener("change", () => toggle(obj.id, visible.checked));
    const label = h(
      "select",
      { class: "compact", "aria-label": `Label of object ${obj.id}`, title: "Label" },
      h("option", { value: "" }, "— no label —"),
      session.labels.map((l, i) => h("option", { value: String(l.id) }, i < 9 ? `${i + 1} · ${l.name}` : l.name)),
    );
    label.value = obj.label_id ? String(obj.label_id) : "";
    label.addEventListener("click", (e) => e.stopPropagation());
    label.addEventListener("change", () => {
      label.blur(); // give the keys back to the canvas shortcuts
      setLabel(obj.id, label.value ? Number(label.value) : null);
    });
    const area = obj.layer ? compact(obj.layer.area) : "empty";
    const areaTitle = obj.layer ? `${obj.layer.area.toLocaleString()} px, box ${obj.layer.w}×${obj.layer.h} at (${obj.layer.x}, ${obj.layer.y})` : "no mask yet";
    const row = h(
      "li",
      {
        class: `object-row${obj.id === session.selected ? " selected" : ""}${obj.hidden ? " hidden-object" : ""}`,
        role: "option",
        "aria-selected": obj.id === session.selected ? "true" : "false",
        dataset: { objectId: obj.id },
        onclick: () => select(obj.id),
      },
      visible,
      h("span", { class: "swatch", style: `background:${cssColor(objectColor(obj, session.labelById))}` }),
      h("span", { class: "object-name" }, `#${obj.id}`),
      label,
      h("span", { class: "muted small object-area", title: areaTitle }, area),
      h(
        "button",
        {
          type: "button",
          class: "small-button object-delete",
          title: "Delete object",
          "aria-label": `Delete object ${obj.id}`,
          onclick: (e) => {
            e.stopPropagation();
            remove(obj.id);
          },
        },
        "×",
      ),
    );
    this.rows.set(obj.id, row);
    return row;
  }
}

/** 9,622 · 10.0k · 1.2M: an area that fits the row (the exact count is in the title). */
function compact(n) {
  if (n < 10000) return n.toLocaleString();
  if (n < 1e6) return `${(n / 1000).toFixed(n < 1e5 ? 1 : 0)}k`;
  return `${(n / 1e6).toFixed(1)}M`;
}

/** "mask 2 of 3 · score 0.81": one of an object's ranked masks (`mask.candidates`). */
export function candidateText({ count, index, scores }) {
  const score = scores?.[index];
  return `mask ${index + 1} of ${count}${typeof score === "number" ? ` · score ${score.toFixed(2)}` : ""}`;
}

/** Which of the selected object's ranked masks is shown; hidden when it has fewer than two. */
export function candidateLine() {
  const text = h("span", { class: "candidate-text" }, "");
  const el = h("p", { class: "candidate-status small", "aria-live": "polite", hidden: true }, text, h("span", { class: "muted" }, " · Tab: next, Shift+Tab: previous"));
  const set = (obj) => {
    const ranked = obj?.candidates;
    el.hidden = !ranked || ranked.count < 2;
    if (!el.hidden) text.textContent = `#${obj.id} · ${candidateText(ranked)}`;
  };
  return { el, set };
}

/** The latency read-out: the last prompt's round trip and the server's own timings. */
export function latencyBox() {
  const el = h("dl", { class: "facts latency", "aria-label": "Latency" });
  const set = (info) => {
    if (!info) {
      mount(el, h("dt", {}, "Last prompt"), h("dd", { class: "muted" }, "none yet"));
      return;
    }
    const ms = (v) => (typeof v === "number" ? `${Math.round(v)} ms` : "—");
    mount(
      el,
      h("dt", {}, "Round trip"),
      h("dd", { class: "latency-rtt" }, ms(info.rtt)),
      h("dt", {}, "Server total"),
      h("dd", { class: "latency-total" }, ms(info.total_ms)),
      h("dt", {}, "Model"),
      h("dd", { class: "latency-model" }, ms(info.model_ms)),
      info.worker ? [h("dt", {}, "Worker"), h("dd", { class: "small latency-worker" }, info.worker, info.cached ? " · features cached" : "")] : null,
    );
  };
  set(null);
  return { el, set };
}
