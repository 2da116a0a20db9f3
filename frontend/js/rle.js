// COCO RLE in the browser: pycocotools' compressed string format, decoded.
//
// A stored mask is {size: [h, w], counts: "<string>"}. Each run length is written as a
// LEB128-like number: characters carry 5 bits each (char code - 48), bit 0x20 says another
// character follows, and in the last character bit 0x10 is the sign. From the fourth count
// on (index > 2) a count is stored as the difference to the count two before it. Runs
// alternate 0,1,0,1... starting with zeros, over the pixels in column-major order.

/** The run lengths of a compressed counts string (pycocotools' rleFrString). */
export function countsFromString(s) {
  const counts = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      if (p >= s.length) throw new Error("corrupt RLE string: it ends inside a number");
      const c = s.charCodeAt(p) - 48;
      if (c < 0 || c > 63) throw new Error(`corrupt RLE string: bad character at ${p}`);
      x += (c & 0x1f) * 2 ** (5 * k); // plain arithmetic: no 32-bit shift overflow
      more = (c & 0x20) !== 0;
      p += 1;
      k += 1;
      if (!more && c & 0x10) x -= 2 ** (5 * k); // sign-extend
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

/** Run lengths of an RLE whose counts may be a string (compressed) or a list (uncompressed). */
export function countsOf(rle) {
  const { counts } = rle;
  if (typeof counts === "string") return countsFromString(counts);
  if (Array.isArray(counts)) return counts.map(Number);
  throw new Error("RLE counts must be a string or a list");
}

/**
 * Decode to a Uint8Array of h*w in column-major order (index = x * h + y), like
 * pycocotools.mask.decode(...).ravel(order="F"). Throws if the runs do not cover h*w.
 */
export function decode(rle) {
  const [h, w] = rle.size;
  const n = h * w;
  const out = new Uint8Array(n);
  const counts = countsOf(rle);
  let pos = 0;
  let value = 0;
  for (const run of counts) {
    if (run < 0 || pos + run > n) throw new Error(`corrupt RLE: runs exceed ${h}×${w}`);
    if (value) out.fill(1, pos, pos + run);
    pos += run;
    value ^= 1;
  }
  if (pos !== n) throw new Error(`corrupt RLE: runs cover ${pos} of ${n} pixels`);
  return out;
}

/** Row-major copy (index = y * w + x), the order canvas ImageData uses. */
export function toRowMajor(colMajor, h, w) {
  const out = new Uint8Array(h * w);
  for (let x = 0; x < w; x += 1) {
    const base = x * h;
    for (let y = 0; y < h; y += 1) {
      if (colMajor[base + y]) out[y * w + x] = 1;
    }
  }
  return out;
}

/** Number of mask pixels. */
export function area(rle) {
  let total = 0;
  countsOf(rle).forEach((run, i) => {
    if (i % 2 === 1) total += run;
  });
  return total;
}
