// The REST API over fetch (session auth + CSRF header), plus an XMLHttpRequest upload that
// reports bytes sent. Every failure becomes an ApiError carrying the server's message.

export class ApiError extends Error {
  constructor(message, { status = 0, code = "", detail = {} } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

export function csrfToken() {
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === "csrftoken") return decodeURIComponent(rest.join("="));
  }
  return "";
}

const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);

/** Flatten DRF-style field errors ({name: ["required"]}) into one readable line. */
function describeDetail(detail) {
  if (!detail || typeof detail !== "object") return "";
  const parts = [];
  for (const [field, value] of Object.entries(detail)) {
    const text = Array.isArray(value) ? value.map((v) => (typeof v === "object" ? JSON.stringify(v) : v)).join(" ") : typeof value === "object" ? JSON.stringify(value) : String(value);
    parts.push(field === "non_field_errors" || field === "non_field" ? text : `${field}: ${text}`);
  }
  return parts.join("; ");
}

/** Build an ApiError from a status and a parsed (or unparsed) body. */
export function errorFrom(status, body, statusText = "") {
  const err = body && typeof body === "object" ? body.error : null;
  if (err) {
    let message = err.message || `HTTP ${status}`;
    const extra = describeDetail(err.detail);
    if (extra && (message === "invalid input" || message === "invalid label")) message = `${message}: ${extra}`;
    return new ApiError(message, { status, code: typeof err.code === "string" ? err.code : "", detail: err.detail || {} });
  }
  if (body && typeof body === "object" && body.detail) {
    return new ApiError(String(body.detail), { status });
  }
  const text = typeof body === "string" && body && body.length < 300 && !body.trimStart().startsWith("<") ? `: ${body}` : "";
  return new ApiError(`HTTP ${status}${statusText ? ` ${statusText}` : ""}${text}`, { status });
}

function parse(text) {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function maybeRedirectToLogin(error) {
  if (error.code === "not_authenticated") {
    // The session expired: sign in again and come back here.
    const next = encodeURIComponent(location.pathname + location.hash);
    location.assign(`/login/?next=${next}`);
  }
}

/**
 * api("/api/projects/", {method: "POST", body: {name}}) -> parsed JSON (null for 204).
 * Throws ApiError with the server's message on any non-2xx answer or network failure.
 */
export async function api(path, { method = "GET", body, signal } = {}) {
  const headers = { Accept: "application/json" };
  let payload;
  if (body instanceof FormData) {
    payload = body;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  if (!SAFE.has(method)) headers["X-CSRFToken"] = csrfToken();
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload, credentials: "same-origin", signal });
  } catch (exc) {
    if (exc.name === "AbortError") throw exc;
    throw new ApiError(`Network error on ${method} ${path}: ${exc.message}`);
  }
  if (res.status === 204) return null;
  const data = parse(await res.text());
  if (!res.ok) {
    const error = errorFrom(res.status, data, res.statusText);
    maybeRedirectToLogin(error);
    throw error;
  }
  return data;
}

export const get = (path, opts) => api(path, { ...opts, method: "GET" });
export const post = (path, body, opts) => api(path, { ...opts, method: "POST", body });
export const patch = (path, body, opts) => api(path, { ...opts, method: "PATCH", body });
export const put = (path, body, opts) => api(path, { ...opts, method: "PUT", body });
export const del = (path, opts) => api(path, { ...opts, method: "DELETE" });

/**
 * POST a FormData with XMLHttpRequest so the bytes sent can be shown.
 * Callbacks: onProgress(loaded, total), onUploaded() once the last byte left the browser
 * (the server is processing from then on). Returns {promise, abort}.
 */
export function upload(path, formData, { onProgress = () => {}, onUploaded = () => {} } = {}) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open("POST", path);
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : 0);
    xhr.upload.onload = () => onUploaded();
    xhr.onload = () => {
      const data = parse(xhr.responseText);
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(data);
      } else {
        const error = errorFrom(xhr.status, data, xhr.statusText);
        maybeRedirectToLogin(error);
        reject(error);
      }
    };
    xhr.onerror = () => reject(new ApiError(`Network error while uploading to ${path}`));
    xhr.onabort = () => reject(new ApiError("Upload cancelled", { code: "aborted" }));
    xhr.send(formData);
  });
  return { promise, abort: () => xhr.abort() };
}

/** One page of a limit/offset list: {count, next, previous, results}. */
export async function getPage(path, { limit = 100, offset = 0, signal } = {}) {
  const sep = path.includes("?") ? "&" : "?";
  return get(`${path}${sep}limit=${limit}&offset=${offset}`, { signal });
}
