// The annotate view's protocol logic: user actions become socket messages, server replies
// update the Session, and the view is told what changed through `ui` callbacks. No DOM here.
//
// ui: status(socket status), rebuild(), objectChanged(obj), objectRemoved(id),
//     selectionChanged(), methodChanged(), latency(info), saved(reply), submitted(reply),
//     fatal(message), flash(text), redraw(), hooks() (refresh the test hooks),
//     error(error, context), proposalPicked(obj) (a click selected a proposal).

import { isProposal } from "./proposals.js";
import { MASK_KINDS, Session } from "./session.js";
import { AnnotateSocket } from "./socket.js";

// Prompts kept in the object's local mirror of its log, so that undo / redo pop the right one
// (the renderer draws markers for those it knows; a candidate choice has none).
const MARKED = new Set(["click", "box", "scribble", "extreme_points", "edit", "candidate"]);

export class Controller {
  constructor({ imageId, taskId, ui }) {
    this.imageId = imageId;
    this.taskId = taskId;
    this.ui = ui;
    this.session = new Session();
    this.opened = false; // an `opened` has arrived at least once
    this.creating = null; // Promise<object id> while a new_object is on its way
    this.queued = []; // prompts waiting for that object: drawn as markers meanwhile
    this.newLabel = null; // label given to new objects (the last one chosen)
    this.steps = new Map(); // undo/redo seq -> object id, to revert the mirror on error
    this.socket = new AnnotateSocket({
      onOpen: () => this.sendOpen(),
      onMessage: (msg, entry) => this.receive(msg, entry),
      onStatus: (status) => this.ui.status(status),
    });
  }

  start() {
    this.socket.connect();
  }

  close() {
    this.socket.close();
  }

  sendOpen() {
    const fields = { image_id: this.imageId };
    if (this.taskId) fields.task_id = this.taskId;
    // After a reconnect keep the method the annotator chose.
    if (this.session.method) fields.method = this.session.method;
    if (this.session.method && this.session.backbone) fields.backbone = this.session.backbone;
    this.socket.send("open", fields);
    this.ui.hooks();
  }

  // ---- Replies ------------------------------------------------------------------------

  receive(msg, entry) {
    const s = this.session;
    switch (msg.type) {
      case "opened": {
        const errors = s.applyOpened(msg);
        this.opened = true;
        for (const { id, error } of errors) this.ui.error(error, `The mask of object ${id} cannot be drawn`);
        this.ui.rebuild();
        break;
      }
      case "method":
        s.method = msg.method;
        s.backbone = msg.backbone || "";
        this.ui.methodChanged();
        break;
      case "object": {
        const obj = s.upsert(msg.object || {});
        // a mask that did not fit in `opened` (its `masks_follow`) comes after it, one object each
        if (msg.object && "rle" in msg.object) {
          try {
            s.setMask(obj, msg.object.box, msg.object.rle);
          } catch (error) {
            this.ui.error(error, `The mask of object ${obj.id} cannot be drawn`);
          }
        }
        if (entry?.type === "new_object") {
          s.selected = obj.id;
          this.ui.objectChanged(obj);
          this.ui.selectionChanged();
        } else {
          this.ui.objectChanged(obj);
        }
        break;
      }
      case "selected":
        if (s.objects.has(msg.object_id) && s.selected !== msg.object_id) {
          s.selected = msg.object_id;
          this.ui.selectionChanged();
        }
        break;
      case "object_deleted":
        s.remove(msg.object_id);
        this.ui.objectRemoved(msg.object_id);
        break;
      case "mask":
        this.receiveMask(msg, entry);
        break;
      case "saved":
        this.ui.saved(msg);
        break;
      case "submitted":
        this.ui.submitted(msg);
        break;
      case "pong":
      case "found": // answered through its request's promise (annotate/findall.js)
        break;
      case "error":
        this.receiveError(msg, entry);
        break;
      default:
        console.warn("unknown message from the annotation socket", msg);
    }
    this.ui.hooks();
  }

  receiveMask(msg, entry) {
    let result;
    try {
      result = this.session.applyMask(msg);
    } catch (error) {
      this.ui.error(error, `The mask of object ${msg.object_id} cannot be drawn`);
      return;
    }
    const { status, obj } = result;
    this.steps.delete(msg.seq);
    // The server answers only the newest of several quick prompts on one object: older
    // ones still waiting are superseded by this answer and will never get their own.
    for (const [seq, sent] of this.socket.pending) {
      if (seq < msg.seq && sent.objectId === obj.id && MASK_KINDS.has(sent.type)) this.socket.forget(seq);
    }
    if (msg.final !== false && entry && MASK_KINDS.has(entry.type)) {
      this.ui.latency({ rtt: performance.now() - entry.t0, total_ms: msg.total_ms, model_ms: msg.model_ms, worker: msg.worker, cached: msg.cached, seq: msg.seq });
    }
    if (status === "applied") this.ui.objectChanged(obj);
  }

  receiveError(msg, entry) {
    const where = entry ? `${entry.type.replace(/_/g, " ")}` : "server";
    this.ui.error(new Error(`${msg.message || msg.code || "error"}${msg.code ? ` (${msg.code})` : ""}`), where === "server" ? "Server" : `Server refused ${where}`);
    if (!entry) return;
    if (entry.type === "open") {
      this.ui.fatal(msg.message || "This image cannot be opened.");
      this.socket.close();
      return;
    }
    const obj = entry.objectId ? this.session.objects.get(entry.objectId) : null;
    if (!obj) return;
    if (MASK_KINDS.has(entry.type) && msg.code === "server_error") {
      // The server may have logged the prompt before it failed (a worker error comes after the
      // commit): what the object looks like now only the server knows. Ask it again.
      this.sendOpen();
      return;
    }
    // Any other refusal changed nothing on the server: undo what the page assumed.
    if (MARKED.has(entry.type)) obj.prompts = obj.prompts.filter((p) => p.seq !== msg.seq);
    if (entry.type === "undo" || entry.type === "redo") this.revertStep(obj, entry.type, msg.seq);
    if (entry.type === "candidate" && obj.choosing?.seq === msg.seq) obj.choosing = null;
    if (MASK_KINDS.has(entry.type) && obj.lastSeq === msg.seq) this.session.recoverKept(obj);
    this.ui.objectChanged(obj);
  }

  // ---- Actions ------------------------------------------------------------------------

  connected() {
    if (this.socket.isOpen && this.opened) return true;
    this.ui.flash("Not connected to the server — wait for the reconnect.");
    return false;
  }

  /** The selected object's id, or a new object's (one creation shared by quick clicks). */
  target() {
    const sel = this.session.selectedObject;
    if (sel) return Promise.resolve(sel.id);
    if (!this.creating) {
      const fields = { label_id: this.newLabel };
      this.creating = this.socket
        .request("new_object", fields)
        .then((reply) => reply.object.id)
        .finally(() => {
          this.creating = null;
        });
    }
    return this.creating;
  }

  /** Send a mask-changing prompt for the selected (or a new) object. */
  async prompt(type, fields, marker, { newObject = false } = {}) {
    if (!this.connected()) return;
    if (!this.session.accepts(type)) {
      // The tools of kinds the method does not take are disabled; this is the last guard (the
      // server would refuse it with bad_request).
      const info = this.session.currentMethod();
      this.ui.flash(`${info?.label || info?.name || "This method"} takes no ${type.replace(/_/g, " ")} prompts.`);
      return;
    }
    if (newObject && this.session.selected !== null) this.finish();
    const queued = { kind: type, payload: marker };
    this.queued.push(queued);
    this.ui.redraw();
    let id;
    try {
      id = await this.target();
    } catch {
      return; // the error reply is already in the banner
    } finally {
      this.queued = this.queued.filter((q) => q !== queued);
    }
    const obj = this.session.objects.get(id);
    if (!obj) return;
    const seq = this.socket.send(type, { object_id: id, ...fields }, { objectId: id });
    if (seq === null) {
      this.ui.flash("Not connected to the server — the prompt was not sent.");
      return;
    }
    this.session.noteSent(obj, seq);
    obj.edited_at = Date.now();
    if (MARKED.has(type)) {
      obj.prompts.push({ seq, kind: type, payload: marker });
      obj.redo = [];
    }
    this.ui.redraw();
    this.ui.hooks();
  }

  /**
   * A click goes to the selected object; with none selected, to the object whose mask is under
   * it (an import, a pseudo label, earlier work: the method refines that mask), else to a new
   * object. N starts a new object on top of an existing one.
   */
  click(x, y, positive) {
    const s = this.session;
    if (s.selected === null && !this.creating) {
      // a visible mask first; else a proposal, even one hidden (a click inside it would
      // otherwise start a duplicate on top of it)
      const hit = s.maskAt(x, y) || s.objectAt(x, y, isProposal);
      if (hit) this.select(hit);
      const obj = s.objects.get(hit);
      if (isProposal(obj)) {
        // selected, not prompted: Accept takes it as it is, the next clicks refine it
        obj.hidden = false;
        this.ui.proposalPicked(obj);
        return Promise.resolve();
      }
    }
    return this.prompt("click", { x, y, positive }, { x, y, positive });
  }

  scribble(points, positive, width) {
    const w = Math.max(1, Math.min(200, width));
    return this.prompt("scribble", { points, positive, width: w }, { points, positive, width: w });
  }

  /**
   * A box (image px, x0 < x1, y0 < y1, inside the image) for the selected object, else a new
   * one: the first prompt of an object or one more of its prompts, so that clicks after a box
   * refine it (and a box after clicks frames them).
   */
  box(x0, y0, x1, y1) {
    const corners = { x0, y0, x1, y1 };
    return this.prompt("box", corners, corners);
  }

  extreme(points) {
    return this.prompt("extreme_points", { points }, { points }, { newObject: true });
  }

  edit(mode, points, width) {
    if (mode === "erase" && !this.session.selectedObject) {
      this.ui.flash("Select an object to erase from.");
      return Promise.resolve();
    }
    const w = Math.max(1, Math.min(500, width));
    return this.prompt("edit", { mode, points, width: w }, { mode, points, width: w });
  }

  /**
   * Tab / Shift+Tab: show the selected object's next (step 1) or previous (-1) ranked mask.
   * The choice is a prompt in the object's log (undo takes it back; its next click shows the
   * best mask again). Returns false when the object has fewer than two masks to cycle.
   */
  cycleCandidate(step) {
    const obj = this.session.selectedObject;
    const ranked = obj?.candidates;
    if (!ranked || ranked.count < 2) return false;
    if (!this.connected()) return true;
    // from the choice still on its way, so that quick presses step on rather than repeat
    const from = obj.choosing ? obj.choosing.index : ranked.index;
    const index = (((from + step) % ranked.count) + ranked.count) % ranked.count;
    const seq = this.socket.send("candidate", { object_id: obj.id, index }, { objectId: obj.id });
    if (seq === null) {
      this.ui.flash("Not connected to the server — the choice was not sent.");
      return true;
    }
    this.session.noteSent(obj, seq);
    obj.edited_at = Date.now();
    obj.prompts.push({ seq, kind: "candidate", payload: { index } });
    obj.redo = [];
    obj.choosing = { seq, index };
    this.ui.hooks();
    return true;
  }

  newObject() {
    if (!this.connected()) return;
    this.finish();
    this.target().catch(() => {});
  }

  select(id) {
    const s = this.session;
    if (!s.objects.has(id) || s.selected === id) return;
    s.selected = id;
    this.ui.selectionChanged();
    if (this.socket.isOpen) this.socket.send("select_object", { object_id: id }, { objectId: id });
  }

  /** Space: the object is done; the next click starts a new one. */
  finish() {
    if (this.session.selected === null) return;
    this.session.selected = null;
    this.ui.selectionChanged();
  }

  remove(id) {
    if (!this.connected()) return;
    this.socket.request("delete_object", { object_id: id }, { objectId: id }).catch(() => {});
  }

  setLabel(id, labelId) {
    this.newLabel = labelId;
    if (id === null || !this.connected()) return;
    this.socket.request("set_label", { object_id: id, label_id: labelId }, { objectId: id }).catch(() => {});
  }

  /** 1–9: the n-th project label for the selected object (and for new objects). */
  labelByIndex(index) {
    const label = this.session.labels[index];
    if (!label) {
      this.ui.flash(`This project has no label ${index + 1}.`);
      return;
    }
    this.setLabel(this.session.selected, label.id);
    this.ui.flash(`Label: ${label.name}`);
  }

  step(redo) {
    const s = this.session;
    const word = redo ? "redo" : "undo";
    const obj = s.stepTarget(redo);
    if (!obj) {
      this.ui.flash(s.objects.size ? `Nothing to ${word}: no object on this image has a prompt to ${word}.` : `Nothing to ${word}: this image has no objects yet.`);
      return;
    }
    if (!s.canStep(obj, redo)) {
      this.ui.flash(`Nothing to ${word} on object #${obj.id}. Esc deselects it; then ${redo ? "Ctrl+Shift+Z" : "Ctrl+Z"} acts on the object edited last.`);
      return;
    }
    if (!this.connected()) return;
    if (s.selected !== obj.id) {
      this.select(obj.id); // show what changes
      this.ui.flash(`${redo ? "Redo" : "Undo"} on object #${obj.id}, the one edited last.`);
    }
    const seq = this.socket.send(word, { object_id: obj.id }, { objectId: obj.id });
    if (seq === null) return;
    this.session.noteSent(obj, seq);
    obj.edited_at = Date.now();
    // Mirror the server's log for the markers: undo hides the newest prompt, redo restores it.
    const [from, to] = redo ? [obj.redo, obj.prompts] : [obj.prompts, obj.redo];
    if (from.length) to.push(from.pop());
    this.steps.set(seq, obj.id);
    this.ui.redraw();
    this.ui.hooks();
  }

  revertStep(obj, type, seq) {
    if (!this.steps.delete(seq)) return;
    const [from, to] = type === "redo" ? [obj.prompts, obj.redo] : [obj.redo, obj.prompts];
    if (from.length) to.push(from.pop());
  }

  save() {
    if (!this.connected()) return Promise.resolve(null);
    return this.socket.request("save").catch(() => null);
  }

  submit() {
    if (!this.taskId) return Promise.resolve(null);
    if (!this.connected()) return Promise.resolve(null);
    return this.socket.request("submit", { task_id: this.taskId }).catch(() => null);
  }

  setMethod(method, backbone) {
    if (!this.connected()) return;
    const fields = { method };
    if (backbone) fields.backbone = backbone;
    this.socket.request("set_method", fields).catch(() => this.ui.methodChanged());
  }
}
