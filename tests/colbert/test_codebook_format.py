"""The stored codebook format: blobs written by the code of 7 Dec 2026 (format version 1, ``residual2`` and
``residual1``) keep opening and decoding to the same values; version 2 (3 and 16 levels) round-trips; version 1
is still what 2 and 4 levels are written as (older builds read those collections)."""

from __future__ import annotations

import numpy as np
import pytest

from colbert.codebook import Codebook, train
from colbert.errors import CodecError
from colbert.residual import ResidualDocs, residual_maxsim

# Written by colbert.codebook at commit 8fea16b (format 1): train(x, bits, k=3) over 40 unit rows of d = 6
# (numpy default_rng(7)), the blob of the first 4 rows encoded, and their decoded values (rounded to 1e-6).
V1 = {
    4: (
        bytes.fromhex(
            "6a6576342d636f6465626f6f6b2d310a0300000006000000020000008d2d76be402def3e96d224bf1ffa00bf21152abe"
            "c6742bbe16a756bef61836bfd4c51d3f50db73beceefcabdce207abde149973da754f23ee9e62dbea400243ff92af83e"
            "78ea9e3e085c7bbee428e03d7da98d3e68d973beb411bf3d82e1843e22dddebda81e883d68ab843e09e92abe6cd3933d"
            "15ecae3e8d9991be76ec913d1ca1963ebe8e08be44a09a3dd09c6e3e5fb6babeaaef6cbd0e255f3e8e6d093f02a20ebf"
            "09c4a5bdbeba2d3e709deb3ebd58e8be9511dfbc9d52153e2128063fcc0a9dbee4d40bbd9d055c3e43e9243f269edbbe"
            "c872cbbd4f08413ee629fd3eb3d9b1be2adeefbce0ed1f3eefedbd3e"
        ),
        bytes.fromhex("00000000010000008d40bef0a3000b70"),
        [
            [-0.022493, -0.090017, -0.119788, -0.537955, -0.265436, -0.514802],
            [-0.022493, 0.927328, -0.119788, -0.288951, 0.328364, 0.203518],
            [0.008293, -0.541661, 0.162498, 0.406043, -0.528031, -0.40843],
            [-0.605081, -0.090017, -0.498015, 0.140368, -0.265436, 0.203518],
        ],
    ),
    2: (
        bytes.fromhex(
            "6a6576342d636f6465626f6f6b2d310a0300000006000000010000008d2d76be402def3e96d224bf1ffa00bf21152abe"
            "c6742bbe16a756bef61836bfd4c51d3f50db73beceefcabdce207abde149973da754f23ee9e62dbea400243ff92af83e"
            "78ea9e3ee428e03db411bf3da81e883d6cd3933d76ec913d44a09a3d555458bed136c13e835aa3be693da13ed64976be"
            "c87cab3e6a852ebeaaeadb3e6c3d87be09d7ae3e96d740be6ff2863e"
        ),
        bytes.fromhex("0000000001000000a0fcd034"),
        [
            [0.136963, 0.148092, -0.308902, -0.674247, -0.430237, -0.35576],
            [0.136963, 0.782064, -0.308902, -0.074292, 0.175388, 0.096131],
            [0.16775, -0.396397, 0.375784, 0.191383, -0.363231, -0.249389],
            [-0.451667, 0.148092, -0.308902, -0.074292, -0.430237, 0.096131],
        ],
    ),
}


@pytest.mark.parametrize("levels", [4, 2])
def test_version_1_blobs_keep_decoding_to_what_they_stored(levels: int) -> None:
    blob, codes, decoded = V1[levels]
    book = Codebook.from_bytes(blob)
    assert (book.levels, book.k, book.dim) == (levels, 3, 6)
    np.testing.assert_allclose(book.decode(codes, 4), np.array(decoded), atol=1e-6)
    assert book.to_bytes() == blob  # still written as version 1, byte for byte
    q = np.array(decoded, dtype=np.float32)[:2]
    score = residual_maxsim(q, ResidualDocs.from_encoded([4], [codes], book), book)
    want = (q.astype(np.float64) @ np.array(decoded).T).max(axis=1).sum()
    assert float(score[0]) == pytest.approx(want, abs=1e-5)


@pytest.mark.parametrize("levels", [3, 16])
def test_version_2_round_trips(levels: int) -> None:
    rng = np.random.default_rng(levels)
    x = rng.standard_normal((200, 10)).astype(np.float32)
    book = train(x / np.linalg.norm(x, axis=1, keepdims=True), levels, k=4)
    blob = book.to_bytes()
    assert blob.startswith(b"jev4-codebook-2\n")
    again = Codebook.from_bytes(blob)
    assert again.levels == levels
    assert again.to_bytes() == blob
    np.testing.assert_array_equal(again.decode(book.encode(x), 200), book.decode(book.encode(x), 200))


def test_damaged_headers_are_codec_errors() -> None:
    blob = V1[4][0]
    bad_bits = blob[:24] + np.array([3], dtype="<i4").tobytes() + blob[28:]  # version 1 knows bits 1 and 2 only
    bad_levels = b"jev4-codebook-2\n" + blob[16:24] + np.array([5], dtype="<i4").tobytes() + blob[28:]
    for damaged in (bad_bits, bad_levels, blob[:-4], b"jev4-codebook-9\n" + blob[16:]):
        with pytest.raises(CodecError, match="damaged"):
            Codebook.from_bytes(damaged)
    with pytest.raises(CodecError, match="levels"):
        train(np.ones((4, 2), np.float32), 8)
