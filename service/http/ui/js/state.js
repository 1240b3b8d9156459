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
