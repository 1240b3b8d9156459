// A page's regions (the API's `regions`: the hit's citations, best first) as numbered boxes over the page image,
// placed in percent of the image (bbox is fractions of the page) so they follow its displayed size, and listed
// beside it with their number, source, score and the page text inside each box.
import { $, clear, formatScore, h } from "./dom.js";

export function clearRegions() {
  delete clear($("#hit-regions")).dataset.count;
  clear($("#hit-citations"));
}

export function showRegions(regions) {
  clearRegions();
  const layer = $("#hit-regions");
  const list = $("#hit-citations");
  if (!Array.isArray(regions)) return;
  regions.forEach((r, i) => {
    const [x0, y0, x1, y1] = r.bbox;
    const n = String(i + 1);
    const box = h("span", { class: `region-box ${r.source}`, dataset: { region: n, source: r.source } }, h("b", {}, n));
    box.style.left = `${100 * x0}%`;
    box.style.top = `${100 * y0}%`;
    box.style.width = `${100 * (x1 - x0)}%`;
    box.style.height = `${100 * (y1 - y0)}%`;
    layer.append(box);
    const text = r.text ? r.text : "(no text in this area: a figure or a page without a text layer)";
    list.append(
      h(
        "li",
        { dataset: { region: n } },
        h("span", { class: `region-tag ${r.source}` }, `${n} · ${r.source} · ${formatScore(r.score)}`),
        h("span", { class: "region-text" }, text),
      ),
    );
  });
  layer.dataset.count = String(regions.length);
}
