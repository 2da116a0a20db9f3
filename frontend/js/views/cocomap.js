// The COCO category map of the upload panel: the table of categories with a label select for
// each (remembering the last choices per project), and the form the preview API reads, which
// holds only the json member of a zip where the browser can cut it out.

import { h, plural } from "../dom.js";

// The last choice for each category name, per project: uploading the same export again then
// maps it the same way (and so adds nothing), without the admin choosing again.
const memoryKey = (projectId) => `maskwright.categoryMap.${projectId}`;

export function remembered(projectId) {
  try {
    return JSON.parse(localStorage.getItem(memoryKey(projectId))) || {};
  } catch {
    return {};
  }
}

export function remember(projectId, preview, choices) {
  const saved = remembered(projectId);
  for (const cat of preview.categories) saved[cat.name] = choices.get(String(cat.id));
  try {
    localStorage.setItem(memoryKey(projectId), JSON.stringify(saved));
  } catch {
    // storage full or disabled: the form falls back to labels of the same name
  }
}

/** The table of COCO categories, each with its select; `choices` follows the selects. The
 * default is the last choice for that name (`memory`), else the label of the same name, else
 * a new one. */
export function mappingTable(preview, choices, memory) {
  const rows = preview.categories.map((cat) => {
    const same = preview.labels.find((l) => l.id === cat.label);
    const last = memory[cat.name];
    const known = last === "drop" || preview.labels.some((l) => l.id === last);
    const initial = known ? String(last) : same ? String(same.id) : "new";
    choices.set(String(cat.id), initial === "new" || initial === "drop" ? initial : Number(initial));
    const select = h(
      "select",
      { class: "compact", "aria-label": `Label for category ${cat.name}`, dataset: { category: cat.id } },
      same ? null : h("option", { value: "new" }, `New label “${cat.name}”`),
      preview.labels.map((l) => h("option", { value: String(l.id) }, l.id === cat.label ? `${l.name} (same name)` : l.name)),
      h("option", { value: "drop" }, "Drop (do not import)"),
    );
    select.value = initial;
    select.addEventListener("change", () => {
      const v = select.value;
      choices.set(String(cat.id), v === "new" || v === "drop" ? v : Number(v));
    });
    return h("tr", {}, h("td", {}, cat.name), h("td", { class: "muted small" }, plural(cat.annotations, "annotation")), h("td", {}, select));
  });
  return h(
    "div",
    {},
    h("p", { class: "small" }, h("strong", {}, "COCO categories"), ` in ${preview.source}: choose the label each one's masks get.`),
    h(
      "table",
      { class: "table category-table", "aria-label": "COCO categories" },
      h("thead", {}, h("tr", {}, h("th", {}, "Category"), h("th", {}, "In the file"), h("th", {}, "Label"))),
      h("tbody", {}, rows),
    ),
  );
}

/** The form the preview API reads: the COCO json if one was chosen, else the json found
 * inside the zips (only that member is sent), else the zips themselves (zip64 and other
 * archives this reader does not handle: the server reads them). null: nothing to read. */
export async function previewForm(coco, zips) {
  const form = new FormData();
  if (coco) {
    form.append("coco", coco, coco.name);
    return form;
  }
  const found = [];
  for (const zip of zips) {
    const members = await jsonMembers(zip).catch(() => null);
    if (members === null) {
      for (const z of zips) form.append("files", z, z.name);
      return form;
    }
    found.push(...members);
  }
  if (!found.length) return null;
  if (found.length > 1) {
    for (const z of zips) form.append("files", z, z.name); // the server names the clash
    return form;
  }
  try {
    form.append("coco", await found[0].read(), found[0].name.split("/").pop());
  } catch {
    for (const z of zips) form.append("files", z, z.name); // a member this reader cannot inflate
  }
  return form;
}

/** The .json members of a zip, as {name, read()} (from its central directory, reading only the
 * archive's tail and those members), or null if the archive needs the server. */
async function jsonMembers(zip) {
  const bytes = async (start, end) => new DataView(await zip.slice(start, end).arrayBuffer());
  const tailLength = Math.min(zip.size, 22 + 65535);
  const tail = await bytes(zip.size - tailLength, zip.size);
  let eocd = -1;
  for (let i = tailLength - 22; i >= 0; i--) {
    if (tail.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) return null;
  const count = tail.getUint16(eocd + 10, true);
  const cdSize = tail.getUint32(eocd + 12, true);
  const cdOffset = tail.getUint32(eocd + 16, true);
  if (count === 0xffff || cdOffset === 0xffffffff) return null; // zip64
  const cd = await bytes(cdOffset, cdOffset + cdSize);
  const decoder = new TextDecoder();
  const readers = [];
  let p = 0;
  for (let n = 0; n < count; n++) {
    if (p + 46 > cd.byteLength || cd.getUint32(p, true) !== 0x02014b50) return null;
    const flags = cd.getUint16(p + 8, true);
    const method = cd.getUint16(p + 10, true);
    const size = cd.getUint32(p + 20, true);
    const nameLength = cd.getUint16(p + 28, true);
    const skip = nameLength + cd.getUint16(p + 30, true) + cd.getUint16(p + 32, true);
    const local = cd.getUint32(p + 42, true);
    const name = decoder.decode(new Uint8Array(cd.buffer, cd.byteOffset + p + 46, nameLength));
    p += 46 + skip;
    const junk = name.split("/").some((part) => part.startsWith(".") || part === "__MACOSX");
    if (!/\.json$/i.test(name) || junk) continue;
    if (flags & 1 || (method !== 0 && method !== 8) || size === 0xffffffff) return null;
    readers.push({ name, read: () => readMember(zip, local, size, method) });
  }
  return readers;
}

/** The bytes of the member whose local header is at `local` (stored or deflated). */
async function readMember(zip, local, size, method) {
  const head = new DataView(await zip.slice(local, local + 30).arrayBuffer());
  if (head.getUint32(0, true) !== 0x04034b50) throw new Error("bad local header");
  const start = local + 30 + head.getUint16(26, true) + head.getUint16(28, true);
  const raw = zip.slice(start, start + size);
  if (method === 0) return raw;
  return new Response(raw.stream().pipeThrough(new DecompressionStream("deflate-raw"))).blob();
}
