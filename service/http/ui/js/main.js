// Entry point: wires the panels together and owns the API-key dialog.
import { apiKey, setApiKey } from "./api.js";
import { initCollections, loadCollections } from "./collections.js";
import { initDocuments } from "./documents.js";
import { $, showBanner } from "./dom.js";
import { initHitView } from "./hitview.js";
import { report } from "./report.js";
import { initSearch } from "./search.js";
import { on } from "./state.js";
import { initUpload } from "./upload.js";

function askForKey(message) {
  const dialog = $("#key-dialog");
  $("#key-error").textContent = message || "";
  $("#key-input").value = apiKey();
  if (!dialog.open) dialog.showModal();
  $("#key-input").focus();
}

function initKeyDialog() {
  $("#key-form").addEventListener("submit", () => {
    setApiKey($("#key-input").value.trim());
    updateKeyButton();
    showBanner("");
    loadCollections().catch(report);
  });
  $("#key-forget").addEventListener("click", () => {
    setApiKey("");
    $("#key-input").value = "";
    updateKeyButton();
  });
  $("#key-button").addEventListener("click", () => askForKey(""));
  on("auth", askForKey);
  updateKeyButton();
}

function updateKeyButton() {
  $("#key-button").textContent = apiKey() ? "API key ✓" : "API key";
}

async function showModelStatus() {
  try {
    const response = await fetch("/ready");
    const body = await response.json();
    $("#model-status").textContent = `${body.model} · ${body.status}`;
    $("#test-checkpoint").hidden = body.test_checkpoint !== true;
    return body;
  } catch {
    return null;
  }
}

async function start() {
  initKeyDialog();
  const ready = await showModelStatus();
  initCollections(ready);
  initUpload();
  initDocuments();
  initSearch();
  initHitView();
  loadCollections().catch(report);
}

start();
