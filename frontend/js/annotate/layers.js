// One object's mask as a small coloured canvas the size of its box.
//
// The socket sends each mask as the RLE of its bounding-box crop, so an object costs memory in
// proportion to its box, never to the image: the bits (1 byte a pixel, column-major as the RLE
// decodes) answer maskAt(), and a box-sized canvas holds the coloured pixels that the renderer
// composites with drawImage under the zoom/pan transform. Edge pixels get a darker shade so
// that touching objects of one label stay apart.

import { decode } from "../rle.js";

const createCanvas = (w, h) => {
  if (typeof OffscreenCanvas === "function") return new OffscreenCanvas(w, h);
  const c = document.createElement("canvas");
  c.width = w;
  c.height = h;
  return c;
};

/**
 * Decode a mask crop: box [x, y, w, h] in image px, rle {size: [h, w], counts} of that crop.
 * Returns {x, y, w, h, bits, area, canvas: null} or null for an empty mask. Throws on an RLE
 * whose size disagrees with its box (the error names both).
 */
export function decodeLayer(box, rle) {
  if (!box || !rle) return null;
  const [x, y, w, h] = box.map(Number);
  const [rh, rw] = rle.size || [];
  if (rh !== h || rw !== w) throw new Error(`mask crop is ${rh}×${rw} but its box is ${h}×${w}`);
  const bits = decode(rle); // column-major: index = cx * h + cy
  let area = 0;
  for (let i = 0; i < bits.length; i += 1) area += bits[i];
  if (!area) return null;
  return { x, y, w, h, bits, area, canvas: null, rgb: null };
}

/** Is image pixel (px, py) inside this layer's mask? */
export function layerHas(layer, px, py) {
  if (!layer) return false;
  const cx = px - layer.x;
  const cy = py - layer.y;
  if (cx < 0 || cy < 0 || cx >= layer.w || cy >= layer.h) return false;
  return layer.bits[cx * layer.h + cy] === 1;
}

/** The layer's canvas in colour `rgb`, painted on first use and again when the colour changes. */
export function layerCanvas(layer, rgb) {
  if (layer.canvas && layer.rgb && layer.rgb.join() === rgb.join()) return layer.canvas;
  const { w, h, bits } = layer;
  const canvas = layer.canvas || createCanvas(w, h);
  const image = new ImageData(w, h);
  const out = image.data;
  const [r, g, b] = rgb;
  const [er, eg, eb] = rgb.map((v) => Math.round(v * 0.55));
  for (let cx = 0; cx < w; cx += 1) {
    const col = cx * h;
    for (let cy = 0; cy < h; cy += 1) {
      if (!bits[col + cy]) continue;
      const edge = cx === 0 || cy === 0 || cx === w - 1 || cy === h - 1 || !bits[col + cy - 1] || !bits[col + cy + 1] || !bits[col - h + cy] || !bits[col + h + cy];
      const o = (cy * w + cx) * 4;
      out[o] = edge ? er : r;
      out[o + 1] = edge ? eg : g;
      out[o + 2] = edge ? eb : b;
      out[o + 3] = 255;
    }
  }
  canvas.getContext("2d").putImageData(image, 0, 0);
  layer.canvas = canvas;
  layer.rgb = rgb;
  return canvas;
}

/**
 * The outline of the layer (edge pixels only, white), built for the selected object only and
 * cached on the layer: a second box-sized canvas for every object would double the memory.
 */
export function layerOutline(layer) {
  if (layer.outline) return layer.outline;
  const { w, h, bits } = layer;
  const canvas = createCanvas(w, h);
  const image = new ImageData(w, h);
  const out = image.data;
  for (let cx = 0; cx < w; cx += 1) {
    const col = cx * h;
    for (let cy = 0; cy < h; cy += 1) {
      if (!bits[col + cy]) continue;
      const edge = cx === 0 || cy === 0 || cx === w - 1 || cy === h - 1 || !bits[col + cy - 1] || !bits[col + cy + 1] || !bits[col - h + cy] || !bits[col + h + cy];
      if (!edge) continue;
      out.fill(255, (cy * w + cx) * 4, (cy * w + cx) * 4 + 4);
    }
  }
  canvas.getContext("2d").putImageData(image, 0, 0);
  layer.outline = canvas;
  return canvas;
}

// ---- Colours --------------------------------------------------------------------------

/** "#1f77b4" -> [31, 119, 180]; null for anything else. */
function parseHex(color) {
  const m = /^#?([0-9a-f]{6})$/i.exec(color || "");
  if (!m) return null;
  const n = parseInt(m[1], 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** HSL (h in degrees, s and l in 0..1) -> [r, g, b]. */
function hsl(hDeg, s, l) {
  const k = (n) => (n + hDeg / 30) % 12;
  const a = s * Math.min(l, 1 - l);
  const f = (n) => l - a * Math.max(-1, Math.min(k(n) - 3, 9 - k(n), 1));
  return [f(0), f(8), f(4)].map((v) => Math.round(v * 255));
}

/**
 * The colour an object is drawn in: its label's, or for an unlabelled object a hue of its own
 * (golden-angle steps over the id, so neighbours in creation order differ clearly).
 */
export function objectColor(obj, labelById) {
  const label = obj.label_id ? labelById.get(obj.label_id) : null;
  const rgb = label ? parseHex(label.color) : null;
  if (rgb) return rgb;
  return hsl((obj.id * 137.508) % 360, 0.85, 0.55);
}

export function cssColor([r, g, b]) {
  return `rgb(${r}, ${g}, ${b})`;
}
