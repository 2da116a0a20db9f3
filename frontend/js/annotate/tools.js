// Pointer input on the stage: tools, strokes, zoom and pan.
//
//   click    left = positive, right (or Shift+left) = negative click; a left drag pans
//   scribble a drag draws a polyline sent as one `scribble` on release; right/Shift = negative
//   extreme  four clicks (left adds, right removes the last) -> one `extreme_points`
//   box      a left drag draws a rectangle sent as one `box` on release (Esc drops it)
//   brush    a drag paints the selected object (`edit`, mode paint); right drag erases
//   eraser   a drag erases from the selected object (`edit`, mode erase)
//   pan      a drag pans
// Everywhere: wheel zooms around the cursor; middle drag or Space+drag pans.
//
// Which tools are enabled comes from what the method in use declares (`opened.methods[*].prompts`):
// a tool with a `prompt` kind is enabled when the method accepts that kind; brush, eraser and
// pan (no prompt kind: `edit` strokes and panning) always are. Kinds no tool sends (text) are
// ignored. No method is named here: see toolStates.

import { acceptedPrompts } from "./session.js";

export const TOOLS = [
  { name: "click", key: "c", title: "Click (C)", text: "Click", prompt: "click", noun: "clicks" },
  { name: "scribble", key: "s", title: "Scribble (S)", text: "Scribble", prompt: "scribble", noun: "scribbles" },
  { name: "extreme", key: "x", title: "Extreme points (X)", text: "Extreme", prompt: "extreme_points", noun: "extreme points" },
  { name: "box", key: "r", title: "Box (R)", text: "Box", prompt: "box", noun: "boxes" },
  { name: "brush", key: "b", title: "Brush (B)", text: "Brush" },
  { name: "eraser", key: "e", title: "Eraser (E)", text: "Eraser" },
  { name: "pan", key: "p", title: "Pan (P, or hold Space, or middle drag)", text: "Pan" },
];

/**
 * name -> {enabled, reason} for every tool of TOOLS under `method` (an `opened.methods` entry,
 * or null before the server listed any: then every tool). reason says why a tool is disabled,
 * "<the method's label> takes no extreme points"; "" for an enabled one.
 */
export function toolStates(method) {
  const accepted = acceptedPrompts(method);
  const who = method?.label || method?.name || "This method";
  return new Map(
    TOOLS.map((t) => {
      const enabled = !t.prompt || accepted.has(t.prompt);
      return [t.name, { enabled, reason: enabled ? "" : `${who} takes no ${t.noun}` }];
    }),
  );
}

/** The first enabled tool of TOOLS under `states` (toolStates), or null. */
export function firstEnabledTool(states) {
  return TOOLS.find((t) => states.get(t.name)?.enabled)?.name ?? null;
}

const DRAG_PX = 5; // a press that moves further than this is a drag, not a click; a box narrower is a slip
const MAX_POINTS = 2000; // the protocol's polyline limit
const STROKE_TOOLS = new Set(["scribble", "brush", "eraser"]);
const round2 = (v) => Math.round(v * 100) / 100;

export class PointerInput {
  /**
   * actions: click(x, y, positive), stroke(tool, points, positive, width),
   * extreme(points), box(x0, y0, x1, y1), changed({view}) — view=true when the transform changed.
   */
  constructor(stage, viewport, actions) {
    this.stage = stage;
    this.viewport = viewport;
    this.actions = actions;
    this.tool = "click";
    this.brushWidth = 12; // image px
    this.cursor = null; // {x, y} image px under the pointer
    this.stroke = null; // {kind, points, positive, width}
    this.extreme = []; // [[x, y], ...] while placing
    this.box = null; // {x0, y0, x1, y1} image px while a box is dragged: clamped, x0 <= x1, y0 <= y1
    this.drag = null; // {mode: "pan" | "click" | "stroke" | "box", sx, sy, lastX, lastY, positive, anchor}
    this.spaceHeld = false;
    this.spaceUsed = false;
    this.enabled = true;
    this.listeners = [];
    this.listen("pointerdown", (e) => this.down(e));
    this.listen("pointermove", (e) => this.move(e));
    this.listen("pointerup", (e) => this.up(e));
    this.listen("pointercancel", () => this.cancelDrag());
    this.listen("pointerleave", () => {
      this.cursor = null;
      this.actions.changed({ view: false });
    });
    this.listen("wheel", (e) => this.wheel(e), { passive: false });
    this.listen("contextmenu", (e) => this.onCanvas(e) && e.preventDefault());
    this.listen("auxclick", (e) => e.preventDefault());
  }

  listen(type, fn, options) {
    this.stage.addEventListener(type, fn, options);
    this.listeners.push([type, fn, options]);
  }

  destroy() {
    for (const [type, fn, options] of this.listeners) this.stage.removeEventListener(type, fn, options);
    this.listeners = [];
  }

  setTool(name) {
    this.tool = name;
    this.extreme = [];
    this.cancelDrag();
    this.stage.dataset.tool = name;
    this.actions.changed({ view: false });
  }

  setBrush(width) {
    this.brushWidth = Math.max(1, Math.min(200, Math.round(width)));
    this.actions.changed({ view: false });
  }

  /** Stage-local CSS px of a pointer event. */
  local(e) {
    const rect = this.stage.getBoundingClientRect();
    return { sx: e.clientX - rect.left, sy: e.clientY - rect.top };
  }

  imagePoint(e) {
    const { sx, sy } = this.local(e);
    return this.viewport.toImage(sx, sy);
  }

  /** A point for the wire: inside the image (the server refuses others), two decimals. */
  clampPoint({ x, y }) {
    const vp = this.viewport;
    return [round2(Math.min(Math.max(x, 0), vp.imageWidth - 0.01)), round2(Math.min(Math.max(y, 0), vp.imageHeight - 0.01))];
  }

  /** Only presses on the canvas count: the help panel and notes also live in the stage. */
  onCanvas(e) {
    return e.target?.tagName === "CANVAS";
  }

  down(e) {
    if (!this.enabled || this.drag || !this.onCanvas(e)) return;
    const { sx, sy } = this.local(e);
    const p = this.viewport.toImage(sx, sy);
    const negative = e.button === 2 || e.shiftKey;
    let mode = null;
    if (e.button === 1 || this.spaceHeld || this.tool === "pan") {
      mode = "pan";
      if (this.spaceHeld) this.spaceUsed = true;
    } else if (e.button !== 0 && e.button !== 2) {
      return;
    } else if (this.tool === "click") {
      mode = "click";
    } else if (this.tool === "extreme") {
      if (e.button === 2) this.extreme.pop();
      else if (this.viewport.contains(p.x, p.y)) this.addExtreme(p);
      this.actions.changed({ view: false });
      e.preventDefault();
      return;
    } else if (this.tool === "box") {
      if (e.button !== 0) return; // a right press means nothing here (no negative boxes)
      mode = "box";
      this.box = this.boxFrom(p, p);
    } else if (STROKE_TOOLS.has(this.tool)) {
      if (this.tool === "eraser" && e.button === 2) return;
      const kind = this.tool === "brush" && e.button === 2 ? "eraser" : this.tool;
      mode = "stroke";
      this.stroke = { kind, points: [this.clampPoint(p)], positive: !negative, width: this.brushWidth };
    }
    if (!mode) return;
    e.preventDefault(); // no text selection, no middle-button autoscroll
    this.drag = { mode, sx, sy, lastX: sx, lastY: sy, positive: !negative, id: e.pointerId, anchor: p };
    this.stage.setPointerCapture?.(e.pointerId);
    this.stage.classList.toggle("panning", mode === "pan");
    this.actions.changed({ view: false });
  }

  move(e) {
    if (!this.drag && !this.onCanvas(e)) {
      // Over the help panel: no brush cursor under it. (While dragging, the stage holds the
      // pointer capture, so events name the stage and are handled below.)
      if (this.cursor) {
        this.cursor = null;
        this.actions.changed({ view: false });
      }
      return;
    }
    const { sx, sy } = this.local(e);
    const p = this.viewport.toImage(sx, sy);
    this.cursor = STROKE_TOOLS.has(this.tool) ? { x: p.x, y: p.y, width: this.brushWidth } : null;
    const drag = this.drag;
    if (drag) {
      if (drag.mode === "click" && Math.hypot(sx - drag.sx, sy - drag.sy) > DRAG_PX) {
        drag.mode = "pan"; // a left drag in the click tool moves the image instead
        this.stage.classList.add("panning");
      }
      if (drag.mode === "pan") {
        this.viewport.panBy(sx - drag.lastX, sy - drag.lastY);
        drag.lastX = sx;
        drag.lastY = sy;
        this.actions.changed({ view: true });
        return;
      }
      if (drag.mode === "box") this.box = this.boxFrom(drag.anchor, p);
      if (drag.mode === "stroke" && this.stroke) {
        // Keep a point per screen pixel or so. A stroke that reaches the protocol's cap keeps
        // every other point and goes on: its whole path, coarser, rather than cut short.
        const last = this.stroke.points[this.stroke.points.length - 1];
        const next = this.clampPoint(p);
        const step = Math.max(0.5, 1.5 / this.viewport.scale);
        if (Math.hypot(next[0] - last[0], next[1] - last[1]) >= step) {
          if (this.stroke.points.length >= MAX_POINTS) this.stroke.points = this.stroke.points.filter((_, i) => i % 2 === 0);
          this.stroke.points.push(next);
        }
      }
    }
    this.actions.changed({ view: false });
  }

  up(e) {
    const drag = this.drag;
    if (!drag || (drag.id !== undefined && e.pointerId !== drag.id)) return;
    this.drag = null;
    this.stage.classList.remove("panning");
    this.stage.releasePointerCapture?.(e.pointerId);
    if (drag.mode === "click") {
      const p = this.viewport.toImage(drag.sx, drag.sy);
      if (this.viewport.contains(p.x, p.y)) this.actions.click(round2(p.x), round2(p.y), drag.positive);
    } else if (drag.mode === "stroke" && this.stroke) {
      const { kind, points, positive, width } = this.stroke;
      this.stroke = null;
      this.actions.stroke(kind, points, positive, width);
    } else if (drag.mode === "box" && this.box) {
      const { x0, y0, x1, y1 } = this.boxFrom(drag.anchor, this.imagePoint(e));
      this.box = null;
      // Too small on screen (a click, a slip, or a drag that stayed off the image): nothing.
      const scale = this.viewport.scale;
      if ((x1 - x0) * scale >= DRAG_PX && (y1 - y0) * scale >= DRAG_PX && x0 < x1 && y0 < y1) this.actions.box(x0, y0, x1, y1);
    }
    this.actions.changed({ view: false });
  }

  cancelDrag() {
    this.drag = null;
    this.stroke = null;
    this.box = null;
    this.stage.classList.remove("panning");
  }

  /**
   * The box spanned by two image points {x, y} (the press and the pointer now), each clamped
   * into the image as clampPoint does, the corners sorted: {x0, y0, x1, y1}, x0 <= x1, y0 <= y1.
   */
  boxFrom(a, b) {
    const [ax, ay] = this.clampPoint(a);
    const [bx, by] = this.clampPoint(b);
    return { x0: Math.min(ax, bx), y0: Math.min(ay, by), x1: Math.max(ax, bx), y1: Math.max(ay, by) };
  }

  addExtreme(p) {
    this.extreme.push(this.clampPoint(p));
    if (this.extreme.length === 4) {
      const points = this.extreme;
      this.extreme = [];
      this.actions.extreme(points);
    }
  }

  /** Escape: drop a half-placed extreme set, a stroke or a box in progress. True if something was dropped. */
  cancel() {
    const had = this.extreme.length > 0 || this.drag !== null;
    this.extreme = [];
    this.cancelDrag();
    this.actions.changed({ view: false });
    return had;
  }

  wheel(e) {
    if (!this.onCanvas(e)) return; // let the help panel scroll
    e.preventDefault();
    const { sx, sy } = this.local(e);
    // Lines (Firefox) and pages are far coarser than pixels; normalise before scaling.
    const unit = e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? 400 : 1;
    const factor = Math.exp(-e.deltaY * unit * 0.0015);
    this.viewport.zoomAt(sx, sy, factor);
    this.actions.changed({ view: true });
  }

  spaceDown() {
    if (this.spaceHeld) return;
    this.spaceHeld = true;
    this.spaceUsed = false;
    this.stage.classList.add("can-pan");
  }

  /** Space released: returns true when it was a plain press (no drag), i.e. "finish object". */
  spaceUp() {
    const plain = this.spaceHeld && !this.spaceUsed;
    this.spaceHeld = false;
    this.spaceUsed = false;
    this.stage.classList.remove("can-pan");
    return plain;
  }
}
