// Paint stored masks into one RGBA overlay (canvas ImageData layout: row-major, 4 bytes a
// pixel): translucent fill in the label colour, an opaque 1-pixel outline on the mask edge.

import { countsOf } from "./rle.js";

/**
 * Paint `instances` (drawn in the order given: later ones on top) into a new ImageData of
 * width × height. `colorOf(instance)` -> [r, g, b]. Returns {data: ImageData, errors: [..]}.
 */
export function paintOverlay(instances, width, height, colorOf, fillAlpha = 0.45) {
  const image = new ImageData(width, height);
  const out = image.data;
  const errors = [];
  const fill = Math.round(Math.max(0, Math.min(1, fillAlpha)) * 255);
  for (const instance of instances) {
    try {
      paintOne(out, width, height, instance.mask, colorOf(instance), fill);
    } catch (error) {
      errors.push({ instance, error });
    }
  }
  return { data: image, errors };
}

function paintOne(out, width, height, rle, [r, g, b], fill) {
  const [h, w] = rle.size;
  if (h !== height || w !== width) throw new Error(`mask is ${h}×${w}, the image ${height}×${width}`);
  const counts = countsOf(rle);
  // Column-major membership, needed to find edge pixels (a 0 or the border next to a 1).
  const inside = new Uint8Array(h * w);
  let pos = 0;
  counts.forEach((run, i) => {
    if (run < 0 || pos + run > h * w) throw new Error("corrupt RLE: runs exceed the image");
    if (i % 2 === 1) inside.fill(1, pos, pos + run);
    pos += run;
  });
  if (pos !== h * w) throw new Error(`corrupt RLE: runs cover ${pos} of ${h * w} pixels`);
  pos = 0;
  counts.forEach((run, i) => {
    if (i % 2 === 1) {
      for (let idx = pos; idx < pos + run; idx += 1) {
        const x = Math.floor(idx / h);
        const y = idx - x * h;
        const edge = y === 0 || y === h - 1 || x === 0 || x === w - 1 || !inside[idx - 1] || !inside[idx + 1] || !inside[idx - h] || !inside[idx + h];
        const o = (y * w + x) * 4;
        out[o] = r;
        out[o + 1] = g;
        out[o + 2] = b;
        out[o + 3] = edge ? 255 : fill;
      }
    }
    pos += run;
  });
}
