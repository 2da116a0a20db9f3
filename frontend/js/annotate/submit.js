// Submit with images left asks first, naming them (issue 19: "Submit at 5 of 7 images done
// gives no warning"). Submitting marks the task submitted; it never marks images done.

import { h, plural } from "../dom.js";

const NAMED = 10; // names listed; the rest are counted

/**
 * Resolves true to submit. With nothing left it does not ask. `left`: [{id, name}] of the
 * images not done; each name links to its image (following one keeps working there).
 */
export function confirmSubmit(left, taskId) {
  if (!left.length) return Promise.resolve(true);
  return new Promise((resolve) => {
    const named = left.slice(0, NAMED);
    const more = left.length - named.length;
    const finish = (ok) => {
      if (dialog.open) dialog.close();
      dialog.remove();
      resolve(ok);
    };
    const keep = h("button", { type: "button", class: "secondary", onclick: () => finish(false) }, "Keep working");
    const go = h("button", { type: "button", class: "primary", onclick: () => finish(true) }, "Submit anyway");
    const dialog = h(
      "dialog",
      { class: "submit-dialog", "aria-label": "Submit with images left?" },
      h("h2", {}, "Submit with images left?"),
      h("p", {}, `${plural(left.length, "image")} of this task ${left.length === 1 ? "is" : "are"} not done yet:`),
      h(
        "ul",
        { class: "submit-left" },
        named.map((i) => h("li", {}, h("a", { href: `#/tasks/${taskId}/images/${i.id}`, onclick: () => finish(false) }, i.name || `Image ${i.id}`))),
        more ? h("li", { class: "muted" }, `and ${more} more`) : null,
      ),
      h("p", { class: "muted small" }, "Mark an image done (D, or the Mark done button) once you have finished it."),
      h("div", { class: "dialog-actions" }, keep, go),
    );
    dialog.addEventListener("cancel", (e) => {
      e.preventDefault(); // Esc: keep working
      finish(false);
    });
    document.body.append(dialog);
    dialog.showModal();
    keep.focus();
  });
}
