// The task's progress on the annotate page: "3 / 7 done", the open image's done mark (a
// button and the D key) and the images left, which Submit names before it submits.
//
// The rule is the server's (annotation/labeling/selectors.py image_done): an image is done
// when its annotator marked it done or a reviewer accepted a proposal on it; imported masks
// and proposals alone never count. The page only shows what /api/tasks/{id}/progress/ says.

import { del, get, put } from "../api.js";
import { h } from "../dom.js";

export class TaskProgress {
  /** error(error, context): how a failed request is shown (the page's banner). */
  constructor({ taskId, imageId, error }) {
    this.taskId = taskId;
    this.imageId = imageId;
    this.error = error;
    this.images = []; // [{id, name, done}] in the task's order
    this.loaded = false;
    this.busy = false;
    this.el = h("span", { class: "muted annotate-progress", title: "Images of the task marked done (or accepted by a reviewer)", dataset: { done: "", total: "" } }, "… done");
    this.button = h(
      "button",
      { type: "button", class: "secondary done-button", "aria-pressed": "false", title: "Mark this image done (D)", disabled: true, onclick: (e) => (e.currentTarget.blur(), this.toggle()) },
      "Mark done",
    );
  }

  async load(signal) {
    try {
      this.set(await get(`/api/tasks/${this.taskId}/progress/`, { signal }));
    } catch (error) {
      if (error.name !== "AbortError") this.error(error, "The task's progress could not be loaded");
    }
  }

  set(body) {
    this.images = body.images || [];
    this.loaded = true;
    const done = this.images.filter((i) => i.done).length;
    this.el.dataset.done = String(done);
    this.el.dataset.total = String(this.images.length);
    this.el.textContent = `${done} / ${this.images.length} done`;
    const mine = this.isDone();
    this.button.disabled = false;
    this.button.setAttribute("aria-pressed", mine ? "true" : "false");
    this.button.textContent = mine ? "✓ Done" : "Mark done";
    this.button.title = mine ? "This image is done; press to take the mark back (D)" : "Mark this image done (D)";
  }

  isDone(imageId = this.imageId) {
    return this.images.find((i) => i.id === imageId)?.done ?? false;
  }

  /** The images not done yet, in the task's order: [{id, name}]. */
  left() {
    return this.images.filter((i) => !i.done);
  }

  /** Mark the open image done, or take the mark back. Returns the new state (null: refused). */
  async toggle() {
    if (this.busy || !this.loaded) return null;
    const mark = !this.isDone();
    const url = `/api/tasks/${this.taskId}/images/${this.imageId}/done/`;
    this.busy = true;
    try {
      this.set(await (mark ? put(url) : del(url)));
      return this.isDone();
    } catch (error) {
      this.error(error, mark ? "The image could not be marked done" : "The done mark could not be taken back");
      return null;
    } finally {
      this.busy = false;
    }
  }
}
