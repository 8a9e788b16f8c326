"""A teacher for knowledge distillation that is an exported model of ours (``--teacher NAME.onnx``).

An exported ensemble has no training checkpoint, but its ONNX graph computes exactly the mean logit
that distillation needs. Running it on every augmented batch would cost more than the training
itself (an INT8 ensemble of 30 networks classifies about 20 prints/s on two cores), so its logits
are computed once, on each un-augmented training image preprocessed as the teacher's metadata
says, and every augmentation of that image learns from them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..config import PreprocessConfig, read_json

log = logging.getLogger(__name__)


def is_exported_model(name: str) -> bool:
    return Path(name).suffix.lower() == ".onnx"


class OnnxTeacher:
    """An exported model opened as a teacher: its preprocessing (checked against the student's, the
    input size apart) and its ONNX Runtime session."""

    def __init__(self, path: str | Path, student: PreprocessConfig | None = None, threads: int = 1) -> None:
        from ..runtime import cpu_session

        self.path = Path(path)
        metadata_path = self.path.with_suffix(".json")
        if not self.path.is_file() or not metadata_path.is_file():
            raise FileNotFoundError(f"teacher {self.path} needs its .onnx file and the .json metadata beside it")
        self.preprocess = PreprocessConfig.from_dict(read_json(metadata_path)["preprocess"])
        if student is not None:
            mismatched = self.preprocess.differences(student)
            if mismatched:
                raise ValueError(f"teacher {self.path} was trained on other preprocessing: {', '.join(mismatched)}")
        self.session = cpu_session(self.path, threads)
        self.input_name = self.session.get_inputs()[0].name
        self.input_size = self.preprocess.input_size


def teacher_test_files(path: str | Path) -> list[str] | None:
    """The files an exported teacher lists as its test split (``NAME.test_files.txt``: paths relative
    to its data folder), if it lists them."""
    listed = Path(path).with_name(f"{Path(path).stem}.test_files.txt")
    if not listed.is_file():
        return None
    return [line.strip() for line in listed.read_text().splitlines() if line.strip()]


def exported_teachers(teacher: str) -> list[str]:
    """The exported models among ``--teacher``'s names; checkpoints and exported models do not mix
    (the first teach on each augmented batch, the second from logits computed once)."""
    from ..config import teacher_checkpoints

    names = teacher_checkpoints(teacher) if teacher else []
    exported = [name for name in names if is_exported_model(name)]
    if exported and len(exported) != len(names):
        raise ValueError("--teacher takes training checkpoints or exported models (.onnx), not both")
    return exported


def exported_teacher_logits(
    models: list[str],
    samples: list,
    paths: np.ndarray,
    index: np.ndarray,
    student: PreprocessConfig,
    cache_dir: str,
    threads: int = 1,
) -> np.ndarray:
    """The mean raw logit of the exported ``models`` on each un-augmented image of ``index`` (NaN
    elsewhere), each model seeing the images preprocessed as its metadata says (its own input size),
    from a cache built like the training one. ``paths``: the training cache's paths, in its order."""
    from ..data.cache import build_cache
    from ..preprocess import to_batch
    from ..progress import progress

    total = np.zeros(len(paths), dtype=np.float64)
    for model in models:
        teacher = OnnxTeacher(model, student, threads=threads)
        cache = build_cache(samples, teacher.preprocess, cache_dir)
        where = {path: i for i, path in enumerate(cache.paths.tolist())}
        rows = np.array([where[path] for path in paths[index].tolist()])
        bar = progress(total=len(rows), desc=f"teacher {teacher.path.name}")
        for start in range(0, len(rows), 64):
            batch = to_batch(list(cache.images[rows[start : start + 64]]))
            total[index[start : start + 64]] += teacher.session.run(None, {teacher.input_name: batch})[0].reshape(-1)
            bar.update(len(batch))
        bar.close()
    logits = np.full(len(paths), np.nan, dtype=np.float32)
    logits[index] = total[index] / len(models)
    return logits
