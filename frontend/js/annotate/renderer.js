// Drawing, on two stacked canvases:
//   base    — the image and the masks, under the zoom/pan transform;
//   overlay — what follows the pointer (brush cursor, the stroke or box being drawn) and the markers,
//             in screen space, so moving the mouse never redraws 200 masks.
// Both redraw only when asked, at most once per animation frame.

import { cssColor, layerCanvas, layerOutline, objectColor } from "./layers.js";

const POSITIVE = "#22c55e";
const NEGATIVE = "#ef4444";
const EXTREME = "#facc15";
const BOX = "#38bdf8"; // a box prompt: neither positive nor negative

export class Renderer {
  constructor(base, overlay, viewport) {
    this.base = base;
    this.overlay = overlay;
    this.viewport = viewport;
    this.dpr = 1;
    this.dirtyBase = false;
    this.dirtyOverlay = false;
    this.frame = 0;
    this.frames = 0; // frames drawn (a test hook: proves redraws stop when nothing changes)
    this.lastFrameMs = 0;
    this.scene = null; // set by the view: () => {bitmap, session, opacity, showMasks, overlay state}
  }

  /** Match both canvases' backing stores to the stage (CSS px × devicePixelRatio). */
  resize(width, height) {
    this.dpr = window.devicePixelRatio || 1;
    for (const canvas of [this.base, this.overlay]) {
      canvas.width = Math.max(1, Math.round(width * this.dpr));
      canvas.height = Math.max(1, Math.round(height * this.dpr));
      canvas.style.width = `${width}px`;
      canvas.style.height = `${height}px`;
    }
    this.request(true, true);
  }

  request(base = true, overlay = true) {
    this.dirtyBase ||= base;
    this.dirtyOverlay ||= overlay;
    if (!this.frame) this.frame = requestAnimationFrame(() => this.draw());
  }

  cancel() {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = 0;
  }

  draw() {
    this.frame = 0;
    const scene = this.scene?.();
    if (!scene) return;
    const t0 = performance.now();
    if (this.dirtyBase) this.drawBase(scene);
    if (this.dirtyOverlay) this.drawOverlay(scene);
    this.dirtyBase = false;
    this.dirtyOverlay = false;
    this.frames += 1;
    this.lastFrameMs = performance.now() - t0;
  }

  drawBase({ bitmap, session, opacity, showMasks }) {
    const g = this.base.getContext("2d");
    const { scale, tx, ty } = this.viewport;
    const d = this.dpr;
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.clearRect(0, 0, this.base.width, this.base.height);
    if (!bitmap) return;
    g.setTransform(d * scale, 0, 0, d * scale, d * tx, d * ty);
    g.imageSmoothingEnabled = scale < 2; // zoomed in, show the real pixels
    // Stretched to the image size the server works in, so both agree on what a pixel is.
    g.drawImage(bitmap, 0, 0, this.viewport.imageWidth, this.viewport.imageHeight);
    if (!showMasks) return;
    g.imageSmoothingEnabled = false; // mask edges stay crisp at any zoom
    // Only boxes that touch the visible part of the image are drawn (cheap when zoomed in).
    const a = this.viewport.toImage(0, 0);
    const b = this.viewport.toImage(this.viewport.width, this.viewport.height);
    for (const obj of session.drawOrder()) {
      const layer = obj.layer;
      if (obj.hidden || !layer) continue;
      if (layer.x > b.x || layer.y > b.y || layer.x + layer.w < a.x || layer.y + layer.h < a.y) continue;
      const selected = obj.id === session.selected;
      g.globalAlpha = selected ? Math.min(1, opacity + 0.15) : opacity; // plus its outline, below
      g.drawImage(layerCanvas(layer, objectColor(obj, session.labelById)), layer.x, layer.y);
      if (selected) {
        g.globalAlpha = 1;
        g.drawImage(layerOutline(layer), layer.x, layer.y);
      }
    }
    g.globalAlpha = 1;
  }

  drawOverlay({ session, overlay }) {
    const g = this.overlay.getContext("2d");
    const d = this.dpr;
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.clearRect(0, 0, this.overlay.width, this.overlay.height);
    g.setTransform(d, 0, 0, d, 0, 0); // CSS px from here on
    const vp = this.viewport;
    const obj = session.selectedObject;
    if (obj && !obj.hidden) {
      if (obj.layer) this.box(g, obj.layer, cssColor(objectColor(obj, session.labelById)));
      for (const prompt of obj.prompts) this.prompt(g, prompt.kind, prompt.payload);
    }
    for (const prompt of overlay.queued) this.prompt(g, prompt.kind, prompt.payload);
    overlay.extreme.forEach(([x, y], i) => this.marker(g, x, y, EXTREME, "diamond", String(i + 1)));
    if (overlay.stroke) {
      const { kind, points, width, positive } = overlay.stroke;
      const color = kind === "eraser" ? "rgba(255,255,255,0.85)" : kind === "brush" ? (obj ? cssColor(objectColor(obj, session.labelById)) : "#ffffff") : positive ? POSITIVE : NEGATIVE;
      this.polyline(g, points, Math.max(1, width * vp.scale), color, kind === "eraser");
    }
    if (overlay.box) this.rect(g, overlay.box, BOX, true);
    if (overlay.cursor) {
      const { x, y, width } = overlay.cursor;
      const p = vp.toStage(x, y);
      g.beginPath();
      g.arc(p.x, p.y, Math.max(1.5, (width * vp.scale) / 2), 0, Math.PI * 2);
      g.lineWidth = 1;
      g.strokeStyle = "rgba(0,0,0,0.8)";
      g.stroke();
      g.setLineDash([3, 3]);
      g.strokeStyle = "rgba(255,255,255,0.95)";
      g.stroke();
      g.setLineDash([]);
    }
  }

  box(g, layer, color) {
    const p = this.viewport.toStage(layer.x, layer.y);
    const q = this.viewport.toStage(layer.x + layer.w, layer.y + layer.h);
    g.lineWidth = 1;
    g.setLineDash([5, 4]);
    g.strokeStyle = color;
    g.strokeRect(Math.round(p.x) - 1.5, Math.round(p.y) - 1.5, Math.round(q.x - p.x) + 3, Math.round(q.y - p.y) + 3);
    g.setLineDash([]);
  }

  prompt(g, kind, payload) {
    if (!payload) return;
    if (kind === "click") {
      this.marker(g, payload.x, payload.y, payload.positive === false ? NEGATIVE : POSITIVE, "dot");
    } else if (kind === "scribble") {
      this.polyline(g, payload.points || [], Math.max(2, (payload.width || 5) * this.viewport.scale), payload.positive === false ? NEGATIVE : POSITIVE, false, 0.6);
    } else if (kind === "extreme_points") {
      for (const [x, y] of payload.points || []) this.marker(g, x, y, EXTREME, "diamond");
    } else if (kind === "box") {
      this.rect(g, payload, BOX, false);
    }
    // `edit` strokes already show in the mask itself.
  }

  /** A box {x0, y0, x1, y1} in image px: solid (a sent prompt) or dashed (being dragged). */
  rect(g, { x0, y0, x1, y1 }, color, dragging) {
    const p = this.viewport.toStage(x0, y0);
    const q = this.viewport.toStage(x1, y1);
    g.save();
    g.lineWidth = 3; // a dark halo keeps the line visible on any image
    g.strokeStyle = "rgba(0,0,0,0.6)";
    g.strokeRect(p.x, p.y, q.x - p.x, q.y - p.y);
    g.lineWidth = 1.5;
    g.strokeStyle = color;
    if (dragging) g.setLineDash([6, 4]);
    g.strokeRect(p.x, p.y, q.x - p.x, q.y - p.y);
    g.restore();
  }

  marker(g, x, y, color, shape, text = "") {
    const p = this.viewport.toStage(x, y);
    g.beginPath();
    if (shape === "diamond") {
      g.moveTo(p.x, p.y - 7);
      g.lineTo(p.x + 7, p.y);
      g.lineTo(p.x, p.y + 7);
      g.lineTo(p.x - 7, p.y);
      g.closePath();
    } else {
      g.arc(p.x, p.y, 5, 0, Math.PI * 2);
    }
    g.fillStyle = color;
    g.fill();
    g.lineWidth = 1.5;
    g.strokeStyle = "#ffffff";
    g.stroke();
    if (text) {
      g.font = "bold 11px system-ui, sans-serif";
      g.fillStyle = "#ffffff";
      g.strokeStyle = "rgba(0,0,0,0.8)";
      g.lineWidth = 3;
      g.strokeText(text, p.x + 9, p.y - 8);
      g.fillText(text, p.x + 9, p.y - 8);
    }
  }

  polyline(g, points, width, color, dashed = false, alpha = 0.75) {
    if (!points.length) return;
    g.save();
    g.globalAlpha = alpha;
    g.lineCap = "round";
    g.lineJoin = "round";
    g.lineWidth = width;
    g.strokeStyle = color;
    g.beginPath();
    points.forEach(([x, y], i) => {
      const p = this.viewport.toStage(x, y);
      if (i === 0) g.moveTo(p.x, p.y);
      else g.lineTo(p.x, p.y);
    });
    if (points.length === 1) {
      const p = this.viewport.toStage(points[0][0], points[0][1]);
      g.lineTo(p.x + 0.01, p.y);
    }
    g.stroke();
    if (dashed) {
      g.globalAlpha = 1;
      g.lineWidth = 1;
      g.setLineDash([4, 4]);
      g.strokeStyle = "rgba(0,0,0,0.7)";
      g.stroke();
    }
    g.restore();
  }
}
