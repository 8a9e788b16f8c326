"""A file given to ``--init-from`` or ``--teacher`` that is no training checkpoint (the exported
.onnx, the run folder, an empty file) is a usage error naming what to give, not a traceback; for
``--init-from``, which takes exported models too, a broken .onnx is refused as no exported model."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("lightning")

from genderclass.config import TrainConfig  # noqa: E402
from genderclass.training.checkpoints import initialise_from  # noqa: E402
from genderclass.training.teachers import load_teacher  # noqa: E402


@pytest.mark.parametrize("kind", ["onnx", "folder", "empty"])
def test_a_file_that_is_no_checkpoint_is_refused_clearly(tmp_path, kind):
    given = tmp_path / {"onnx": "face.onnx", "folder": "run", "empty": "best.ckpt"}[kind]
    if kind == "folder":
        given.mkdir()
    else:
        given.write_bytes(b"\x08\x07\x12\x0bpytorch" if kind == "onnx" else b"")
    with pytest.raises(ValueError, match=f"{given} is not a training checkpoint .*checkpoints/best.ckpt"):
        load_teacher(str(given))
    # --init-from also takes exported models: a broken one is refused as none
    refused = f"{given} is not an exported model" if kind == "onnx" else f"{given} is not a training checkpoint"
    with pytest.raises(ValueError, match=refused):
        initialise_from(None, TrainConfig(init_from=str(given)))
