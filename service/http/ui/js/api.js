// HTTP to the server's own API: JSON in and out, the API key as a Bearer header, errors as ApiError carrying
// the API's {"error": {"message", "type", "code"}} body. Images are fetched with the key and handed out as
// object URLs (an <img> cannot send headers).

const KEY = "jev4.apiKey";

export class ApiError extends Error {
  constructor(status, message, code, type) {
    super(message);
    this.status = status;
    this.code = code;
    this.type = type;
  }
}

export function apiKey() {
  return sessionStorage.getItem(KEY) || "";
}

export function setApiKey(value) {
  if (value) sessionStorage.setItem(KEY, value);
  else sessionStorage.removeItem(KEY);
}

function headers(extra = {}) {
  const h = { ...extra };
  const key = apiKey();
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

async function failure(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const err = body && body.error;
  if (err && typeof err.message === "string") {
    return new ApiError(response.status, err.message, err.code, err.type);
  }
  return new ApiError(response.status, `HTTP ${response.status} ${response.statusText}`, "http_error", "");
}

async function send(method, path, body, signal) {
  const init = { method, headers: headers(), signal };
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (!response.ok) throw await failure(response);
  return response;
}

export async function request(method, path, body, { signal } = {}) {
  const response = await send(method, path, body, signal);
  return response.status === 204 ? null : response.json();
}

// An upload: its job (202 / 201), or — the same bytes already stored (JEV4_DUPLICATE_POLICY=return_existing) —
// the stored document, with `duplicateOf` from the X-Duplicate-Of header.
export async function upload(path, form) {
  const response = await send("POST", path, form);
  return { body: await response.json(), duplicateOf: response.headers.get("X-Duplicate-Of") };
}

export const get = (path, opts) => request("GET", path, undefined, opts);
export const post = (path, body, opts) => request("POST", path, body, opts);
export const del = (path, opts) => request("DELETE", path, undefined, opts);

export const enc = encodeURIComponent;

export function collectionPath(name) {
  return `/v1/collections/${enc(name)}`;
}

export function pagePath(collection, documentId, page) {
  return `${collectionPath(collection)}/documents/${enc(documentId)}/pages/${enc(String(page))}`;
}

// Object URLs of fetched images, by request URL; cleared when the collection changes.
const images = new Map();

export function imageUrl(collection, documentId, page, size) {
  const url = `${pagePath(collection, documentId, page)}/image?size=${size}`;
  if (!images.has(url)) {
    const pending = fetch(url, { headers: headers() }).then(async (response) => {
      if (!response.ok) throw await failure(response);
      return URL.createObjectURL(await response.blob());
    });
    pending.catch(() => images.delete(url));
    images.set(url, pending);
  }
  return images.get(url);
}

export function forgetImages() {
  for (const pending of images.values()) {
    pending.then((u) => URL.revokeObjectURL(u), () => {});
  }
  images.clear();
}

// A document's page numbers (GET document's `page_numbers`: a page selection's numbers, not 1..pages), by
// collection and document; forgotten when documents change.
const numbers = new Map();

export function pageNumbers(collection, documentId) {
  const key = JSON.stringify([collection, documentId]);
  if (!numbers.has(key)) {
    const pending = get(`${collectionPath(collection)}/documents/${enc(documentId)}`).then((d) => d.page_numbers);
    pending.catch(() => numbers.delete(key));
    numbers.set(key, pending);
  }
  return numbers.get(key);
}

export function forgetPageNumbers() {
  numbers.clear();
}
