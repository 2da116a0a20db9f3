// The list of masks beside the image: colour, label, area, source, review state, and a
// checkbox to hide each one.

import { h, mount, plural } from "../dom.js";
import { safeColor, stateBadge } from "./common.js";

export function instanceList(body, instances, labels, hidden, onChange) {
  if (!instances.length) {
    mount(body, h("p", { class: "empty-inline" }, "No masks on this image yet."));
    return;
  }
  const sorted = [...instances].sort((a, b) => b.z_order - a.z_order || b.id - a.id); // top first
  mount(
    body,
    h("p", { class: "muted small" }, plural(instances.length, "mask")),
    h(
      "ul",
      { class: "instance-list" },
      sorted.map((inst) => {
        const label = inst.label ? labels.get(inst.label) : null;
        const box = h("input", { type: "checkbox", checked: !hidden.has(inst.id), "aria-label": `Show mask ${inst.id}` });
        box.addEventListener("change", () => {
          if (box.checked) hidden.delete(inst.id);
          else hidden.add(inst.id);
          onChange();
        });
        const details = [`${inst.area.toLocaleString()} px`, inst.source];
        if (inst.score !== null && inst.score !== undefined) details.push(`score ${Number(inst.score).toFixed(2)}`);
        return h(
          "li",
          { class: "instance", dataset: { instanceId: inst.id } },
          box,
          h("span", { class: "swatch", style: `background:${label ? safeColor(label.color) : "#a0a0a0"}` }),
          h(
            "div",
            { class: "instance-text" },
            h("div", { class: "instance-name" }, label ? label.name : "no label", h("span", { class: "muted small" }, ` #${inst.id}`)),
            h("div", { class: "muted small" }, details.join(" · ")),
          ),
          stateBadge(inst.review_state),
        );
      }),
    ),
  );
}
