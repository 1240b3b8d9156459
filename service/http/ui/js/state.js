// The page's shared state and a tiny event hub between panels.

export const state = {
  collection: null, // the selected collection object (as GET /v1/collections returns it)
};

const listeners = new Map();

export function on(event, fn) {
  if (!listeners.has(event)) listeners.set(event, []);
  listeners.get(event).push(fn);
}

export function emit(event, detail) {
  for (const fn of listeners.get(event) || []) fn(detail);
}

// Text/code collections (issue 16's `unit_kind: "chunk"`) hold chunks of text files instead of page images.
export const holdsChunks = (c) => Boolean(c) && c.unit_kind === "chunk";
export const unitWord = (c, n = 2) => (holdsChunks(c) ? "chunk" : "page") + (n === 1 ? "" : "s");
