// Proposals on the canvas: pending pseudo labels that a batch method made (MIS gives some 20
// regions per image) and nobody has touched. They are hidden by default (painted over the
// photo they hid it, and a click on the person made a duplicate on top of its proposal); a
// toggle shows them, with their count. A click inside one, shown or not, selects it instead of
// starting an object: then Accept (A) takes it as it is, clicks refine it, Delete removes it.

import { post } from "../api.js";
import { h, plural } from "../dom.js";

/** A pending pseudo label no prompt has touched yet (refined ones are the annotator's work). */
export const isProposal = (obj) => !!obj && obj.pseudo === true && obj.review_state === "pending" && obj.prompts.length === 0;

export class ProposalToggle {
  /** changed(): redraw after the visibility changed. */
  constructor(changed) {
    this.changed = changed;
    this.show = false;
    this.seen = new Set(); // ids given the toggle's state once: a hand-shown one stays shown
    this.checkbox = h("input", { type: "checkbox", id: "annotate-show-proposals", onchange: () => this.set(this.checkbox.checked) });
    this.count = h("span", { class: "muted small proposal-count", dataset: { count: "0" } }, "");
    this.el = h("div", { class: "side-row proposals-row" }, h("label", { class: "check", for: "annotate-show-proposals" }, this.checkbox, " Proposals"), this.count);
    this.session = null;
  }

  /** After `opened` or any object change: new proposals take the toggle's state. */
  apply(session) {
    this.session = session;
    let n = 0;
    let hidden = 0;
    for (const obj of session.objects.values()) {
      if (!isProposal(obj)) continue;
      n += 1;
      if (!this.seen.has(obj.id)) {
        this.seen.add(obj.id);
        obj.hidden = !this.show && obj.id !== session.selected;
      }
      if (obj.hidden) hidden += 1;
    }
    this.count.dataset.count = String(n);
    // with the toggle off some may be shown: those Find all found, one a click selected
    let text = plural(n, "proposal");
    if (!this.show && hidden) text += hidden < n ? `, ${hidden} hidden` : " hidden";
    this.count.textContent = n ? text : "none";
    this.el.hidden = false;
  }

  /** A proposal the annotator asked for (Find all): shown, whatever the toggle says. */
  reveal(obj) {
    this.seen.add(obj.id);
    obj.hidden = false;
  }

  set(show) {
    this.show = show;
    this.checkbox.checked = show;
    const s = this.session;
    if (!s) return;
    for (const obj of s.objects.values()) {
      if (isProposal(obj)) obj.hidden = !show && obj.id !== s.selected;
    }
    this.apply(s);
    this.changed();
  }
}

/**
 * Take a proposal as the annotator's own mask as it is (it leaves the review queue): the call
 * of Accept (A) and of Find all's Keep all. Updates `obj`; rejects with the API's error.
 */
export async function adoptProposal(obj) {
  const out = await post(`/api/instances/${obj.id}/adopt/`, { version: obj.version });
  Object.assign(obj, { pseudo: false, review_state: out.review_state, version: out.version });
  return obj;
}

/** The side panel's line for a selected proposal: what it is and what can be done with it. */
export function proposalBar({ accept, remove }) {
  const text = h("span", {}, "");
  const el = h(
    "div",
    { class: "proposal-bar small", hidden: true, role: "group", "aria-label": "Selected proposal" },
    text,
    h("button", { type: "button", class: "small-button proposal-accept", title: "Take this proposal as your mask (A)", onclick: (e) => (e.currentTarget.blur(), accept()) }, "Accept"),
    h("button", { type: "button", class: "small-button proposal-delete", title: "Delete this proposal (Delete)", onclick: (e) => (e.currentTarget.blur(), remove()) }, "Delete"),
    h("span", { class: "muted" }, " · click to refine"),
  );
  return {
    el,
    set(obj) {
      el.hidden = !isProposal(obj);
      if (!el.hidden) text.textContent = `Proposal #${obj.id}${obj.source ? ` (${obj.source})` : ""}: `;
    },
  };
}
