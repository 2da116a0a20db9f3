// "Find all" (issue 20): the annotator names a label of the project and the server finds every
// instance of it in the open image (SAM 3 with the label's name as its text prompt). The
// `found` reply brings new objects of that label, stored as pending pseudo labels, so the
// proposal machinery applies to each: A (the proposal bar's Accept) keeps it, Delete removes
// it, a click refines it. Unlike a batch job's proposals, hidden until asked for, these are
// shown: the annotator asked for them. Keep all / Delete all act on those still pending.
//
// Contract (protocol.schema.json, `opened.find_all`, `find_all` → `found`):
//   send {type: "find_all", seq, label_id}; later {type: "found", seq, label_id, text,
//   objects: [object state with box + rle], count, skipped, model_ms, worker}, or an `error`
//   with the same seq. One find at a time per socket (the server answers "busy" otherwise).

import { h, mount } from "../dom.js";
import { adoptProposal, isProposal } from "./proposals.js";

const DATALIST_ID = "annotate-find-labels";
const HINT = "Find every instance of this label in the image (L, then Enter)";

/** The label of `labels` called `name` (trimmed, any case), or null. */
export function labelNamed(labels, name) {
  const wanted = name.trim().toLowerCase();
  if (!wanted) return null;
  return labels.find((l) => l.name.trim().toLowerCase() === wanted) || null;
}

/** “cat” with typographic quotes, as the status line shows a label's name. */
const quoted = (text) => `“${text}”`;

export class FindAll {
  /**
   * controller(): the annotate Controller (its session, socket and `ui` callbacks: a found
   * object is announced through ui.objectChanged as an `object` message's is); a function, as
   * the view builds its side panel before its controller.
   * proposals: the ProposalToggle (found objects are marked seen and shown there).
   */
  constructor({ controller, proposals }) {
    this.controllerOf = controller;
    this.proposals = proposals;
    this.busy = false; // a find_all is on its way
    this.labels = null; // the session's label list the datalist was filled from
    this.result = null; // {text, ids} of the last `found`: the label's name, the objects
    this.options = h("datalist", { id: DATALIST_ID });
    this.input = h("input", {
      type: "text",
      class: "find-input",
      list: DATALIST_ID,
      autocomplete: "off",
      placeholder: "Label, e.g. cat",
      "aria-label": "Label to find",
      onkeydown: (e) => e.key === "Enter" && (e.preventDefault(), this.submit()),
      oninput: () => this.say(""),
    });
    this.button = h("button", { type: "button", class: "small-button find-button", title: HINT, onclick: (e) => (e.currentTarget.blur(), this.submit()) }, "Find");
    this.message = h("p", { class: "find-message small", role: "alert", hidden: true });
    this.note = h("p", { class: "muted small find-note", hidden: true }, "");
    this.statusText = h("span", { class: "find-status-text" }, "");
    this.keepAll = h("button", { type: "button", class: "small-button find-keep-all", title: "Keep every found object still pending, as Accept (A) does", onclick: (e) => (e.currentTarget.blur(), this.keep()) }, "Keep all");
    this.deleteAll = h("button", { type: "button", class: "small-button find-delete-all", title: "Delete every found object still pending", onclick: (e) => (e.currentTarget.blur(), this.discard()) }, "Delete all");
    this.status = h("div", { class: "find-status small", role: "status", hidden: true }, this.statusText, this.keepAll, this.deleteAll);
    this.el = h(
      "section",
      { class: "find-all", "aria-label": "Find all", dataset: { state: "unavailable" } },
      h("h2", {}, "Find all"),
      h("div", { class: "side-row find-row" }, this.input, this.options, this.button),
      this.message,
      this.note,
      this.status,
    );
  }

  get controller() {
    return this.controllerOf();
  }

  get session() {
    return this.controller.session;
  }

  /** `opened.find_all`, or why not: {available, why}. */
  availability() {
    const info = this.session.findAll;
    if (!this.controller.opened) return { available: false, why: "Connecting…" };
    if (!info) return { available: false, why: "This server does not offer Find all." };
    if (!info.available) return { available: false, why: info.why || "No method that finds objects by name is available." };
    if (!this.session.labels.length) return { available: false, why: "This project has no labels to find." };
    return { available: true, why: null };
  }

  /** After any change: the datalist, the control's state and the status line's buttons. */
  update() {
    if (this.labels !== this.session.labels) {
      this.labels = this.session.labels; // a new list after every `opened`
      mount(this.options, this.labels.map((l) => h("option", { value: l.name })));
    }
    const { available, why } = this.availability();
    this.el.dataset.state = this.busy ? "busy" : available ? "ready" : "unavailable";
    this.input.disabled = !available;
    this.button.disabled = !available || this.busy;
    this.button.textContent = this.busy ? "Finding…" : "Find";
    this.input.title = available ? "" : why;
    this.button.title = available ? HINT : why;
    if (!available) this.say(""); // an earlier find's complaint means nothing now
    // a short line only for a reason worth reading (not while connecting)
    this.note.hidden = available || !this.controller.opened;
    if (!this.note.hidden) this.note.textContent = `Unavailable: ${why}`;
    const left = this.pending().length;
    this.keepAll.hidden = this.deleteAll.hidden = left === 0;
  }

  /** L: the field gets the keys (or the flash says why it cannot). */
  focus() {
    const { available, why } = this.availability();
    if (!available) {
      this.controller.ui.flash(`Find all is unavailable: ${why}`);
      return;
    }
    this.input.focus();
    this.input.select();
  }

  say(text) {
    this.message.hidden = !text;
    this.message.textContent = text;
  }

  /** Enter or Find: send find_all for the label named in the field. */
  async submit() {
    if (this.busy || !this.availability().available) return;
    const label = labelNamed(this.session.labels, this.input.value);
    if (!label) {
      const name = this.input.value.trim();
      this.say(name ? `No label ${quoted(name)} in this project. Pick one from the list.` : "Type or pick a label of the project.");
      this.input.focus();
      return;
    }
    if (!this.controller.connected()) return;
    this.say("");
    this.input.value = label.name;
    this.input.blur(); // the keys go back to the canvas: A and Delete act on what is found
    this.busy = true;
    this.update();
    const t0 = performance.now();
    let reply;
    try {
      reply = await this.controller.socket.request("find_all", { label_id: label.id });
    } catch (error) {
      // a refusal is also in the banner (Controller.receiveError); a lost line ends it too
      this.say(`Find all ${quoted(label.name)} failed: ${error.message}`);
      return;
    } finally {
      this.busy = false;
      this.update();
    }
    if (reply?.type === "found") this.receive(reply, label, performance.now() - t0);
  }

  /** A `found` reply: its objects join the canvas, shown, the first one selected. */
  receive(msg, label, rttMs) {
    const s = this.session;
    const added = [];
    for (const raw of msg.objects || []) {
      const obj = s.upsert(raw);
      if ("rle" in raw) {
        try {
          s.setMask(obj, raw.box, raw.rle);
        } catch (error) {
          this.controller.ui.error(error, `The mask of object ${obj.id} cannot be drawn`);
        }
      }
      this.proposals.reveal(obj); // shown though the Proposals toggle hides batch proposals
      added.push(obj);
    }
    for (const obj of added) this.controller.ui.objectChanged(obj);
    const text = msg.text || label.name;
    const skipped = msg.skipped || 0;
    this.result = { text, ids: added.map((o) => o.id) };
    if (added.length) this.controller.select(added[0].id);
    const already = skipped ? ` (${skipped} already there)` : "";
    const n = added.length;
    this.statusText.textContent = n ? `Found ${n} ${quoted(text)}${already} — keep (A) or delete (Delete) ${n === 1 ? "it" : "each"}` : `No ${quoted(text)} found${already}`;
    const took = [typeof msg.model_ms === "number" ? `model ${Math.round(msg.model_ms)} ms` : null, `round trip ${Math.round(rttMs)} ms`, msg.worker ? `on ${msg.worker}` : null];
    this.status.title = took.filter(Boolean).join(" · ");
    this.status.hidden = false;
    this.update();
    this.controller.ui.hooks();
  }

  /** The objects of the last find that are still untouched proposals. */
  pending() {
    if (!this.result) return [];
    return this.result.ids.map((id) => this.session.objects.get(id)).filter(isProposal);
  }

  /** Keep all: Accept's adopt call for each found object still pending. */
  async keep() {
    const objects = this.pending();
    const { text } = this.result; // a new find may answer meanwhile
    let kept = 0;
    this.keepAll.disabled = this.deleteAll.disabled = true; // one adopt per object, not two
    try {
      for (const obj of objects) {
        try {
          await adoptProposal(obj);
          kept += 1;
          this.controller.ui.objectChanged(obj);
        } catch (error) {
          this.controller.ui.error(error, `Object #${obj.id} could not be kept`);
        }
      }
    } finally {
      this.keepAll.disabled = this.deleteAll.disabled = false;
    }
    this.ended(`Kept ${kept} ${quoted(text)}`);
  }

  /** Delete all: delete_object for each found object still pending. */
  discard() {
    if (!this.controller.connected()) return;
    const objects = this.pending();
    for (const obj of objects) this.controller.remove(obj.id);
    this.ended(`Deleted ${objects.length} ${quoted(this.result.text)}`);
  }

  ended(text) {
    this.statusText.textContent = text;
    this.controller.ui.flash(text);
    this.update();
  }
}
