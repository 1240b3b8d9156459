"""The codecs on the Qdrant backend through HTTP (qdrant-client's local mode): a codec Qdrant cannot store is a
422 ``invalid_codec`` naming the codecs to send instead; one it can is created with its quantized copy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qdrant_client import models as qm

from tests.service.collections.test_collections_backends import _ready_app
from tests.service.helpers import error_message


def test_residual_codecs_are_refused_and_int8_gets_its_quantized_copy(tmp_path: Path, tiny_encoder: Any) -> None:
    with _ready_app(tiny_encoder, data_dir=tmp_path, collection_backend="qdrant") as c:
        for codec in ("residual2", "residual1"):
            message = error_message(c.post("/v1/collections", json={"name": "r", "codec": codec}), 422, "invalid_codec")
            assert f"cannot store codec {codec}" in message
            assert "['float32', 'float16', 'int8', 'binary']" in message
        assert c.get("/v1/collections").json()["data"] == []
        assert c.post("/v1/collections", json={"name": "q", "codec": "int8"}).status_code == 201
        client = c.app.state.runtime.catalog.backend.client
        mv = client.get_collection("q").config.params.vectors["mv"]
        assert mv.datatype == qm.Datatype.FLOAT16
        assert isinstance(mv.quantization_config, qm.ScalarQuantization)
