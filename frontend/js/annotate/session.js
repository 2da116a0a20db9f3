// What the page knows about the open image: its objects (with decoded masks), labels,
// methods and the selection. Built from `opened` and kept current by the server's replies;
// the server stays the source of truth (a reconnect throws this away and rebuilds it).
//
// Stale masks: per object we remember the newest seq we sent that can change its mask
// (click, box, scribble, extreme_points, edit, candidate, undo, redo). A `mask` answering an older
// seq is not drawn. It is kept aside, though: if the newer prompt then fails, the server
// changed nothing for it, so the kept mask is the object's true state and is applied after all.

import { decodeLayer, layerHas } from "./layers.js";

export const MASK_KINDS = new Set(["click", "box", "scribble", "extreme_points", "edit", "candidate", "undo", "redo"]);

// The prompt kinds of an `opened.methods` entry that declares none (`prompts` came later):
// what every method took before. `edit` (brush, eraser) and `candidate` (which of the method's
// ranked masks to show) are the platform's own kinds, read by no method: always allowed.
const PLATFORM_KINDS = new Set(["edit", "candidate"]);
export const DEFAULT_PROMPTS = Object.freeze(["click", "scribble", "extreme_points"]);

/** The prompt kinds a method entry accepts (a Set); null (no methods known yet): the defaults. */
export function acceptedPrompts(method) {
  return new Set(Array.isArray(method?.prompts) ? method.prompts : DEFAULT_PROMPTS);
}

export class Session {
  constructor() {
    this.reset();
  }

  reset() {
    this.image = null; // {id, width, height, file_url, name}
    this.taskId = null;
    this.objects = new Map(); // id -> object (see makeObject)
    this.labels = [];
    this.labelById = new Map();
    this.methods = [];
    this.unavailable = []; // {name, label, why}: methods no worker has the checkpoint of
    this.findAll = null; // `opened.find_all`: {available, method, why} (annotate/findall.js)
    this.method = "";
    this.backbone = "";
    this.selected = null;
    this.masksApplied = 0;
    this.masksStale = 0;
    this.lastAppliedSeq = 0;
  }

  /** Rebuild everything from an `opened` reply; keeps hidden flags and the selection if the objects survive. */
  applyOpened(msg) {
    const hidden = new Set([...this.objects.values()].filter((o) => o.hidden).map((o) => o.id));
    const selected = this.selected;
    const applied = this.masksApplied;
    const stale = this.masksStale;
    this.reset();
    this.masksApplied = applied;
    this.masksStale = stale;
    this.image = msg.image;
    this.taskId = msg.task_id ?? null;
    this.labels = msg.labels || [];
    this.labelById = new Map(this.labels.map((l) => [l.id, l]));
    this.methods = msg.methods || [];
    this.unavailable = msg.unavailable || [];
    this.findAll = msg.find_all || null;
    this.method = msg.method || "";
    this.backbone = msg.backbone || "";
    const errors = [];
    for (const raw of msg.objects || []) {
      const obj = this.upsert(raw);
      obj.hidden = hidden.has(obj.id);
      try {
        this.setMask(obj, raw.box, raw.rle);
      } catch (error) {
        errors.push({ id: obj.id, error });
      }
    }
    this.selected = selected !== null && this.objects.has(selected) ? selected : null;
    return errors;
  }

  makeObject(id) {
    return {
      id,
      label_id: null,
      version: 0,
      source: "",
      pseudo: false, // with review_state "pending": a proposal (annotate/proposals.js)
      review_state: "",
      edited_at: null, // ms of its newest prompt (the server's, or this page's): see stepTarget
      prompts: [], // active prompts, for the markers: {seq, kind, payload}
      redo: [], // prompts undone here, newest last (a local mirror of the server's log)
      can_undo: false,
      can_redo: false,
      layer: null, // decodeLayer(...) or null when empty
      hidden: false,
      lastSeq: 0, // newest mask-changing seq sent for this object
      appliedSeq: 0, // seq of the mask drawn now
      kept: null, // newest stale mask, see the header
      candidates: null, // the drawn mask's {count, index, scores} (the method's ranked masks) or null
      choosing: null, // {seq, index} of a `candidate` sent and not answered yet (Tab pressed again)
    };
  }

  /** Create or update an object from the server's object state (no pixels). */
  upsert(raw) {
    let obj = this.objects.get(raw.id);
    if (!obj) {
      obj = this.makeObject(raw.id);
      this.objects.set(raw.id, obj);
    }
    if ("label_id" in raw) obj.label_id = raw.label_id ?? null;
    if (typeof raw.version === "number") obj.version = raw.version;
    if (raw.source !== undefined) obj.source = raw.source;
    if (typeof raw.pseudo === "boolean") obj.pseudo = raw.pseudo;
    if (typeof raw.review_state === "string") obj.review_state = raw.review_state;
    if (typeof raw.edited_at === "number") obj.edited_at = raw.edited_at;
    if (Array.isArray(raw.prompts)) {
      obj.prompts = raw.prompts.map((p) => ({ seq: p.seq, kind: p.kind, payload: p.payload }));
      obj.redo = [];
    }
    if (typeof raw.can_undo === "boolean") obj.can_undo = raw.can_undo;
    if (typeof raw.can_redo === "boolean") obj.can_redo = raw.can_redo;
    if ("candidates" in raw) obj.candidates = raw.candidates ?? null; // kept from an earlier visit
    return obj;
  }

  setMask(obj, box, rle) {
    obj.layer = decodeLayer(box, rle);
  }

  remove(id) {
    this.objects.delete(id);
    if (this.selected === id) this.selected = null;
  }

  /** Remember that `seq` is the newest prompt that concerns `obj`'s mask. */
  noteSent(obj, seq) {
    if (seq > obj.lastSeq) obj.lastSeq = seq;
  }

  /**
   * Apply a `mask` reply. Returns {status: "applied" | "stale", obj}; throws (after updating
   * the object's flags) when the RLE cannot be decoded.
   */
  applyMask(msg) {
    let obj = this.objects.get(msg.object_id);
    if (!obj) obj = this.upsert({ id: msg.object_id }); // a multi-object method touched an object we had not seen
    if (msg.seq < obj.lastSeq) {
      // Kept only if newer than what is drawn: an older answer can never be the truth.
      if (msg.seq > obj.appliedSeq && (!obj.kept || msg.seq >= obj.kept.seq)) obj.kept = msg;
      this.masksStale += 1;
      return { status: "stale", obj };
    }
    this.commitMask(obj, msg);
    return { status: "applied", obj };
  }

  commitMask(obj, msg) {
    obj.kept = null;
    obj.appliedSeq = msg.seq;
    if (typeof msg.version === "number") obj.version = msg.version;
    if (typeof msg.can_undo === "boolean") obj.can_undo = msg.can_undo;
    if (typeof msg.can_redo === "boolean") obj.can_redo = msg.can_redo;
    obj.candidates = msg.candidates ?? null;
    if (obj.choosing && msg.seq >= obj.choosing.seq) obj.choosing = null;
    this.masksApplied += 1;
    this.lastAppliedSeq = Math.max(this.lastAppliedSeq, msg.seq);
    this.setMask(obj, msg.box, msg.rle);
  }

  /** The newest prompt of `obj` failed: fall back to the mask kept aside, if any. */
  recoverKept(obj) {
    if (!obj?.kept || obj.kept.seq <= obj.appliedSeq) return false;
    const kept = obj.kept;
    obj.lastSeq = kept.seq;
    this.commitMask(obj, kept);
    return true;
  }

  /** Objects in drawing order: by id (newer on top), the selected one last. */
  drawOrder() {
    const list = [...this.objects.values()].sort((a, b) => a.id - b.id);
    if (this.selected !== null) {
      const i = list.findIndex((o) => o.id === this.selected);
      if (i >= 0) list.push(...list.splice(i, 1));
    }
    return list;
  }

  /** The visible object drawn on top at image pixel (x, y), or 0. */
  maskAt(x, y) {
    const px = Math.floor(x);
    const py = Math.floor(y);
    const order = this.drawOrder();
    for (let i = order.length - 1; i >= 0; i -= 1) {
      const obj = order[i];
      if (!obj.hidden && layerHas(obj.layer, px, py)) return obj.id;
    }
    return 0;
  }

  /** The object drawn on top at (x, y) among those `pick(obj)` accepts, hidden ones included, or 0. */
  objectAt(x, y, pick) {
    const px = Math.floor(x);
    const py = Math.floor(y);
    const order = this.drawOrder();
    for (let i = order.length - 1; i >= 0; i -= 1) {
      const obj = order[i];
      if (pick(obj) && layerHas(obj.layer, px, py)) return obj.id;
    }
    return 0;
  }

  /** Whether undo (redo) has something to do on `obj`. */
  canStep(obj, redo) {
    if (!obj) return false;
    return redo ? obj.can_redo || obj.redo.length > 0 : obj.can_undo || obj.prompts.length > 0;
  }

  /**
   * The object undo (redo) acts on: the selected one; with none selected, the one edited last
   * that has something to undo (redo): by this page's prompts, or after a reopen by each
   * object's newest logged prompt (`edited_at`). Null when no object has anything.
   */
  stepTarget(redo) {
    if (this.selectedObject) return this.selectedObject;
    let best = null;
    for (const obj of this.objects.values()) {
      if (this.canStep(obj, redo) && (best === null || (obj.edited_at ?? -1) > (best.edited_at ?? -1))) best = obj;
    }
    return best;
  }

  get selectedObject() {
    return this.selected === null ? null : this.objects.get(this.selected) || null;
  }

  methodInfo(name = this.method) {
    return this.methods.find((m) => m.name === name) || null;
  }

  /** The `opened.methods` entry in use: by name, then by backbone where a name repeats. */
  currentMethod() {
    const named = this.methods.filter((m) => m.name === this.method);
    return named.find((m) => (m.backbones || []).includes(this.backbone)) || named[0] || null;
  }

  /** Whether the method in use takes prompts of this kind (the platform's own always). */
  accepts(kind) {
    return PLATFORM_KINDS.has(kind) || acceptedPrompts(this.currentMethod()).has(kind);
  }
}
