// One place that reports a failed call: a rejected key asks for one (main.js shows the key dialog with the
// API's message); anything else goes to the banner with the API's message and code.
import { ApiError } from "./api.js";
import { showBanner } from "./dom.js";
import { emit } from "./state.js";

export function report(err) {
  if (err instanceof ApiError && err.status === 401) {
    emit("auth", err.message);
    return;
  }
  showBanner(err instanceof ApiError ? `${err.message} (${err.code}, HTTP ${err.status})` : String(err.message || err));
}
