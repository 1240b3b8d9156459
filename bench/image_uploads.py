"""Bytes an image upload keeps, per image: the kept original and the stored page image, through the real write
path (the HTTP app in-process, the tiny random checkpoint: the vectors do not matter here, the bytes do).

Images: ``samples/dashboard.png`` (a screenshot), the first pages of ``samples/report.pdf`` rendered at 144 DPI
and saved as PNG, JPEG (q85) and WebP (q80), as a user's scans and screenshots would come. Printed per image:
the original's bytes, the page image stored beside it, and (the ratio) what a page image adds to the original.
With ``JEV4_KEEP_ORIGINALS`` on (the default) and a PNG/JPEG/WebP original, the page image is made again from
the original on demand (:mod:`service.collections.page_images`), so nothing is stored beside it; the last
column times that: decode, resize to the layout, PNG, first request (later ones hit the cache).

    .venv/bin/python bench/image_uploads.py
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]


def _images() -> list[tuple[str, bytes]]:
    from model.pdf import render_pages

    out = [("dashboard.png", (ROOT / "samples" / "dashboard.png").read_bytes())]
    pages = render_pages((ROOT / "samples" / "report.pdf").read_bytes(), dpi=144, pages=[1, 2])
    for p in pages:
        for fmt, ext, kw in (("PNG", "png", {}), ("JPEG", "jpg", {"quality": 85}), ("WEBP", "webp", {"quality": 80})):
            buf = io.BytesIO()
            p.image.save(buf, format=fmt, **kw)
            out.append((f"report-p{p.page_number}.{ext}", buf.getvalue()))
    return out


def main() -> None:
    from litestar.testing import TestClient

    from colbert.catalog import Catalog
    from model.encoder import Encoder
    from model.testing import build_tiny_checkpoint
    from service.http.app import create_app
    from service.settings import Settings

    tmp = Path(tempfile.mkdtemp())
    encoder = Encoder.from_pretrained(build_tiny_checkpoint(tmp / "tiny"), dtype="float32", device="cpu")
    data = tmp / "data"
    rows = []
    with TestClient(create_app(Settings(data_dir=data), encoder=encoder)) as c:
        while c.get("/ready").status_code != 200:
            time.sleep(0.05)
        assert c.post("/v1/collections", json={"name": "img"}).status_code == 201
        for name, blob in _images():
            r = c.post("/v1/collections/img/documents", files={"file": (name, blob)}, data={"document_id": name})
            assert r.status_code in (200, 201), r.text
            start = time.perf_counter()
            page = c.get(f"/v1/collections/img/documents/{name}/pages/1/image")
            ms = (time.perf_counter() - start) * 1000
            assert page.status_code == 200, page.text
            rows.append((name, len(blob), ms, page.headers["content-type"]))
    with Catalog(data) as catalog:
        store = catalog.get("img")
        print(f"{'image':<18}{'original B':>12}{'page image B':>14}{'stored/original':>17}{'page GET ms':>13}  served")
        total_o = total_p = 0
        for name, size, ms, media in rows:
            stored = store.get_image(name, 1)
            extra = 0 if stored is None else len(stored)
            total_o += size
            total_p += extra
            print(f"{name:<18}{size:>12,}{extra:>14,}{(size + extra) / size:>17.3f}{ms:>13.1f}  {media}")
        print(f"{'all':<18}{total_o:>12,}{total_p:>14,}{(total_o + total_p) / total_o:>17.3f}")


if __name__ == "__main__":
    main()
