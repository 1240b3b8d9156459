// Upload: drag and drop (or choose) several files; each is sent as multipart with ?wait=false and gets a
// progress bar fed by its indexing job (pages_done / pages_total); errors show the API's message.
import { collectionPath, get, upload } from "./api.js";
import { $, h, parseJsonObject } from "./dom.js";
import { report } from "./report.js";
import { emit, holdsChunks, on, state, unitWord } from "./state.js";

const POLL_MS = 250;

function row(file) {
  const bar = h("progress", { max: 1, "aria-label": `Indexing ${file.name}` });
  const status = h("span", { class: "status muted" }, "uploading…");
  const li = h("li", { class: "upload" }, h("span", { class: "file-name" }, file.name), bar, status);
  $("#uploads").prepend(li);
  return { li, bar, status, units: unitWord(state.collection) };
}

function fail(ui, message) {
  ui.li.classList.add("failed");
  ui.bar.removeAttribute("value");
  ui.bar.value = 0;
  ui.status.textContent = message;
}

function showProgress(ui, job) {
  if (job.pages_total) {
    ui.bar.max = job.pages_total;
    ui.bar.value = job.pages_done;
    ui.status.textContent = `${job.pages_done} / ${job.pages_total} ${ui.units} · ${job.status}`;
  } else {
    ui.status.textContent = job.status;
  }
}

async function follow(ui, collection, job) {
  const url = `${collectionPath(collection)}/jobs/${encodeURIComponent(job.id)}`;
  for (;;) {
    showProgress(ui, job);
    if (job.status === "succeeded") {
      ui.li.classList.add("done");
      ui.bar.max = job.pages_total || 1;
      ui.bar.value = ui.bar.max;
      ui.status.textContent = `${job.pages_done} / ${job.pages_total} ${ui.units} · done · document ${job.document_id}`;
      return true;
    }
    if (job.status === "failed") {
      fail(ui, job.error ? `${job.error.message} (${job.error.code})` : "failed");
      return false;
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
    job = await get(url);
  }
}

// The server already holds these bytes (200 + X-Duplicate-Of): nothing was indexed, nothing failed.
function stored(ui, documentId) {
  ui.li.classList.add("duplicate");
  ui.bar.max = 1;
  ui.bar.value = 1;
  ui.status.textContent = `already stored as ${documentId}`;
  return false;
}

const isPdf = (file) => file.type === "application/pdf" || /\.pdf$/i.test(file.name);

async function send(file, collection, metadata, pages) {
  const ui = row(file);
  const form = new FormData();
  form.append("file", file, file.name);
  if (metadata) form.append("metadata", JSON.stringify(metadata));
  if (pages && isPdf(file)) form.append("pages", pages); // a page selection applies to PDFs only
  try {
    const sent = await upload(`${collectionPath(collection)}/documents?wait=false`, form);
    if (sent.duplicateOf !== null) return stored(ui, sent.duplicateOf);
    return await follow(ui, collection, sent.body);
  } catch (err) {
    fail(ui, err.code ? `${err.message} (${err.code})` : err.message);
    if (err.status === 401) report(err);
    return false;
  }
}

export async function uploadFiles(files) {
  if (!state.collection || !files.length) return;
  const collection = state.collection.name;
  let metadata = null;
  try {
    metadata = parseJsonObject($("#upload-metadata").value, "Metadata");
  } catch (err) {
    report(err);
    return;
  }
  const pages = $("#upload-pages").value.trim();
  const results = await Promise.all([...files].map((f) => send(f, collection, metadata, pages)));
  if (results.some(Boolean)) emit("changed", collection);
}

// What the drop zone takes: every page format (service/collections/converters: PDFs, images, office files,
// e-books, web pages, Markdown and text), or (text/code collections) text and code files. Dropped files are sent
// whatever their name; the server names what it cannot read. The file chooser offers the same list.
const PAGE_PROMPT = "Drop documents here (PDF, Word, Excel, PowerPoint, e-book, web page, image)";
export const PAGE_FORMATS = ".pdf,image/*,.svg,.docx,.xlsx,.pptx,.odt,.ods,.odp,.rtf,.doc,.xls,.ppt,.epub,.xps,.oxps,.fb2,.mobi,.cbz,.html,.htm,.md,.markdown,.txt";

function adapt(c) {
  const chunks = holdsChunks(c);
  $("#drop-what").textContent = chunks ? "Drop text or code files here" : PAGE_PROMPT;
  const input = $("#file-input");
  if (chunks) input.removeAttribute("accept");
  else input.accept = PAGE_FORMATS;
  $("#upload-pages-label").hidden = chunks;
}

export function initUpload() {
  const zone = $("#dropzone");
  const input = $("#file-input");
  on("collection", adapt);
  input.addEventListener("change", () => {
    uploadFiles(input.files);
    input.value = "";
  });
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    uploadFiles(e.dataTransfer.files);
  });
}
