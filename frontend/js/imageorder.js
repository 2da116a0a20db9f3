// The order of images in a dataset (by id, as the API lists them), remembered per dataset
// so that the image view can step to the previous / next image without refetching.

import { getPage } from "./api.js";

const PAGE = 1000;
const cache = new Map(); // dataset id -> {ids: number[], count: number}

/** The dataset page tells us what it has loaded (its first pages). */
export function remember(datasetId, offset, results, count) {
  const entry = cache.get(datasetId) || { ids: [], count };
  if (offset === 0) entry.ids = [];
  if (offset === entry.ids.length) entry.ids.push(...results.map((img) => img.id));
  entry.count = count;
  cache.set(datasetId, entry);
}

export function forget(datasetId) {
  cache.delete(datasetId);
}

async function loadMore(datasetId, signal) {
  const entry = cache.get(datasetId) || { ids: [], count: Infinity };
  const page = await getPage(`/api/datasets/${datasetId}/images/`, { limit: PAGE, offset: entry.ids.length, signal });
  entry.ids.push(...page.results.map((img) => img.id));
  entry.count = page.count;
  cache.set(datasetId, entry);
  return page.results.length > 0;
}

/** Position of `imageId`: {index, count, prev, next} (prev/next null at the ends). */
export async function locate(datasetId, imageId, signal) {
  let entry = cache.get(datasetId);
  // Page in until the image and its successor are known (or the list ends).
  while (!entry || !entry.ids.includes(imageId) || (entry.ids.indexOf(imageId) === entry.ids.length - 1 && entry.ids.length < entry.count)) {
    const grew = await loadMore(datasetId, signal);
    entry = cache.get(datasetId);
    if (!grew) break;
  }
  const index = entry.ids.indexOf(imageId);
  if (index < 0) return { index: -1, count: entry.count, prev: null, next: null };
  return {
    index,
    count: entry.count,
    prev: index > 0 ? entry.ids[index - 1] : null,
    next: index < entry.ids.length - 1 ? entry.ids[index + 1] : null,
  };
}
