// Zoom and pan: one scale and one offset map image pixels to stage pixels (CSS px from the
// stage's top-left corner): stage = image * scale + (tx, ty). Every drawing and every pointer
// conversion goes through here, so the canvas and the test hooks cannot disagree.

const MAX_SCALE = 40; // a pixel 40 screen px wide is enough to edit single pixels
const MIN_FRACTION_OF_FIT = 0.25; // zooming out further than a quarter of "fit" is never useful

export class Viewport {
  constructor() {
    this.scale = 1;
    this.tx = 0;
    this.ty = 0;
    this.width = 1; // stage size, CSS px
    this.height = 1;
    this.imageWidth = 0;
    this.imageHeight = 0;
    this.fitted = true; // follow stage resizes until the user zooms or pans
  }

  setStage(width, height) {
    this.width = Math.max(1, width);
    this.height = Math.max(1, height);
    if (this.fitted) this.fit();
  }

  setImage(width, height) {
    this.imageWidth = width;
    this.imageHeight = height;
    this.fit();
  }

  fitScale() {
    if (!this.imageWidth || !this.imageHeight) return 1;
    const margin = 16;
    return Math.max(1e-3, Math.min((this.width - margin) / this.imageWidth, (this.height - margin) / this.imageHeight));
  }

  fit() {
    this.scale = this.fitScale();
    this.tx = (this.width - this.imageWidth * this.scale) / 2;
    this.ty = (this.height - this.imageHeight * this.scale) / 2;
    this.fitted = true;
  }

  /** Multiply the scale by `factor`, keeping the image point under (sx, sy) where it is. */
  zoomAt(sx, sy, factor) {
    const min = this.fitScale() * MIN_FRACTION_OF_FIT;
    const scale = Math.min(MAX_SCALE, Math.max(min, this.scale * factor));
    const { x, y } = this.toImage(sx, sy);
    this.scale = scale;
    this.tx = sx - x * scale;
    this.ty = sy - y * scale;
    this.fitted = false;
  }

  panBy(dx, dy) {
    this.tx += dx;
    this.ty += dy;
    this.fitted = false;
  }

  /** Stage px -> image px (floats; pixel (i, j) covers [i, i+1) × [j, j+1)). */
  toImage(sx, sy) {
    return { x: (sx - this.tx) / this.scale, y: (sy - this.ty) / this.scale };
  }

  /** Image px -> stage px. */
  toStage(x, y) {
    return { x: x * this.scale + this.tx, y: y * this.scale + this.ty };
  }

  contains(x, y) {
    return x >= 0 && y >= 0 && x < this.imageWidth && y < this.imageHeight;
  }
}
