// DOM helpers. Every string goes in as text (textContent / attribute values), never as HTML.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export const $ = (selector, root = document) => root.querySelector(selector);

export function clear(el) {
  observers.get(el)?.disconnect(); // the replaced list's lazy images: nothing keeps them alive
  observers.delete(el);
  el.replaceChildren();
  return el;
}

export function showBanner(message) {
  const banner = $("#banner");
  banner.textContent = message;
  banner.hidden = !message;
}

// A score with three significant digits: MaxSim sums (12.3), cosines (0.874) and small BM25 scores (0.00123)
// all stay readable.
export function formatScore(score) {
  if (typeof score !== "number" || !Number.isFinite(score)) return "—";
  return score === 0 ? "0" : String(Number(score.toPrecision(3)));
}

export function formatBytes(n) {
  if (typeof n !== "number") return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function metadataList(metadata) {
  const entries = Object.entries(metadata || {});
  if (!entries.length) return h("p", { class: "muted" }, "no metadata");
  return h(
    "dl",
    { class: "meta" },
    entries.map(([k, v]) => [h("dt", {}, k), h("dd", {}, typeof v === "string" ? v : JSON.stringify(v))]),
  );
}

// Parse an optional JSON object typed by a person; throws an Error naming the field.
export function parseJsonObject(text, what) {
  const trimmed = text.trim();
  if (!trimmed) return null;
  let value;
  try {
    value = JSON.parse(trimmed);
  } catch (e) {
    throw new Error(`${what} is not valid JSON (${e.message}); write an object such as {"kind": "report"}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new Error(`${what} must be a JSON object such as {"kind": "report"}`);
  }
  return value;
}

// Lazy images: the <img> gets its object URL when it scrolls into view. Each list of them (search results, the
// documents) has its own observer, disconnected by clear() when the list is replaced: one observer for the
// page would keep every image of every replaced list (and its loader) until it scrolled into view, i.e. never.
const observers = new WeakMap();

function observerOf(list) {
  let observer = observers.get(list);
  if (!observer) {
    observer = new IntersectionObserver(
      (entries) => {
        for (const entry of entries) {
          if (!entry.isIntersecting) continue;
          observer.unobserve(entry.target);
          entry.target._load?.();
        }
      },
      { rootMargin: "200px" },
    );
    observers.set(list, observer);
  }
  return observer;
}

// `list`: the element the image is shown in (emptied with clear()), which owns the observer.
export function lazyImage(img, load, list) {
  img.loading = "lazy";
  img.decoding = "async";
  const start = () =>
    load().then(
      (url) => {
        img.src = url;
      },
      (err) => {
        img.replaceWith(h("span", { class: "img-missing", title: err.message }, "no image"));
      },
    );
  if (!("IntersectionObserver" in window)) {
    start();
    return img;
  }
  img._load = start;
  observerOf(list).observe(img);
  return img;
}

export function confirmDialog(text) {
  const dialog = $("#confirm-dialog");
  $("#confirm-text", dialog).textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
    dialog.returnValue = "cancel";
    dialog.showModal();
  });
}
