"""The predict service: one ONNX Runtime session + the model's own preprocessing.

CLI, Python API and web app are thin layers over ``GenderClassifier``. Results follow the public
jsonl contract: ``{"path", "faces": [{"box", "label", "p_female", "confidence"}], "error"}``.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Sequence
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .. import calibration as cal
from ..config import DEFAULT_BATCH_SIZE, LABELS, UNCERTAIN, PreprocessConfig, counted_architectures
from ..imageio import ImageError, ImageSource, check_image_source, load_image
from ..modalities import Modality, modality_for
from ..preprocess import Crop, crops_for_image, to_batch
from . import fingerprint_fusion as fusion
from .bundled import bundled_model_path
from .metadata import migrate, read_metadata

log = logging.getLogger(__name__)

NON_FINITE_OUTPUT = "the model returned a score that is not a finite number: its ONNX file may be broken"


class GenderClassifier:
    """Classify faces or fingerprints with an exported model (ONNX + metadata JSON)."""

    def __init__(
        self, onnx_path: str | Path, metadata: dict[str, Any], threads: int | None = None, device: str = "cpu"
    ) -> None:
        from ..runtime import check_device, inference_session

        self.path = Path(onnx_path)
        self.stored_metadata = metadata  # as the file holds it (``info --json``)
        metadata = migrate(metadata, self.path.with_suffix(".json"))  # every field present from here on
        self.metadata = metadata
        self.preprocess = PreprocessConfig.from_dict(metadata["preprocess"])
        self.modality: str = metadata["modality"]
        try:
            modality_for(self.modality)
        except ValueError as exc:
            raise ValueError(f"{self.path.with_suffix('.json')}: {exc}") from None
        self.threshold = float(metadata["threshold"])
        self.temperature = float(metadata["temperature"])
        self.min_confidence = float(metadata["min_confidence"])
        # fingerprints: a person's mean logit, and prints whose finger is known, have calibrations of their own
        self.fusion_temperature, self.fusion_temperatures, self.finger_known = fusion.fusion_settings(metadata)
        if self.threshold != 0.5 and metadata["confidence_scale"] != cal.CONFIDENCE_SCALE:
            log.warning(
                "%s was exported before confidence was centred on its threshold (%.3f): its min_confidence "
                "was fitted on the old scale; export it again to refit it",
                self.path,
                self.threshold,
            )
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, Integral) or threads < 0):
            raise ValueError(f"threads must be a whole number, 0 or more (0 or None: min(2, cores)), not {threads!r}")
        threads = int(threads or min(2, os.cpu_count() or 1))
        self.device = check_device(device)  # before the session: a missing GPU runtime is no broken model
        try:
            self.session = inference_session(self.path, threads, self.device)
        except Exception as exc:  # onnxruntime raises its own types for missing, corrupt or invalid files
            reason = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise ValueError(f"{self.path} is not a usable ONNX model: {reason}") from exc
        self.input_name = self.session.get_inputs()[0].name
        self._detector = None
        log.debug(
            "loaded %s (%s, %d px, threshold %.3f, %d threads)",
            self.path,
            self.modality,
            self.preprocess.input_size,
            self.threshold,
            threads,
        )

    # ----------------------------------------------------------------------------- loading
    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        modality: str | None = None,
        threads: int | None = None,
        device: str = "cpu",
    ) -> GenderClassifier:
        """Load a model: ``None`` = the bundled model of ``modality`` (default: face); else an
        ``.onnx`` file, its ``.json`` metadata, or a folder holding one ``*.onnx`` (a run's
        ``export/``), which must be a ``modality`` model if one is named. ``threads``: ONNX Runtime
        intra-op threads (None or 0: min(2, cores)). ``device``: ``cpu``, or ``cuda`` through ONNX
        Runtime's CUDA execution provider (needs the ``onnxruntime-gpu`` package; without it a
        :class:`~genderclass.runtime.DeviceUnavailableError` names what to install).

        FileNotFoundError for a path without a model; ValueError for an unknown modality, a folder
        of several models, a broken model file or a model of another modality. One classifier can
        serve several threads at once."""
        onnx_path, metadata = model_files(path, modality or "face")
        clf = cls(onnx_path, metadata, threads=threads, device=device)
        if path is not None and modality and clf.modality != modality:
            raise ValueError(f"a {modality} model was asked for, but {onnx_path} is a {clf.modality} model")
        return clf

    def __repr__(self) -> str:
        device = "" if self.device == "cpu" else f", device={self.device!r}"
        return (
            f"GenderClassifier(path={str(self.path)!r}, modality={self.modality!r}, "
            f"name={self.metadata.get('name')!r}{device})"
        )

    @property
    def modality_spec(self) -> Modality:
        """What this model's modality does differently (:mod:`genderclass.modalities`)."""
        return modality_for(self.modality)

    @property
    def detector(self):
        if self._detector is None:
            from ..faces.detect import default_detector

            self._detector = default_detector(device=self.device)
        return self._detector

    # ----------------------------------------------------------------------------- core
    def logits(self, crops: Sequence[np.ndarray], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """Raw logits for model-ready uint8 crops (HxWxC), run in true batches."""
        out = []
        for start in range(0, len(crops), batch_size):
            batch = to_batch(list(crops[start : start + batch_size]))
            out.append(self.session.run(None, {self.input_name: batch})[0].reshape(-1))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def fusion_temperature_for(self, n_fused: Any = None, finger_known: bool = False) -> Any:
        """The temperature for a mean logit over ``n_fused`` prints (an int or one count per mean):
        fitted at export for each count up to the largest that enough validation subjects reach (more
        prints: the last one), on logits with the fingers' offsets removed for ``finger_known``; without
        a count, or for a model exported before the table, the one fitted on whole validation subjects.
        One print is not a mean: it gets the per-print temperature, so fusing it answers as ``predict``."""
        return fusion.fusion_temperature_for(self, n_fused, finger_known)

    def probability(
        self, logits: np.ndarray, fused: bool = False, finger_known: bool = False, n_fused: Any = None
    ) -> np.ndarray:
        """Calibrated P(female) (temperature scaling fitted on validation at export). ``fused``:
        for mean logits of one person's ``n_fused`` images (:meth:`fusion_temperature_for`);
        ``finger_known``: for logits whose finger's offset was removed (:meth:`finger_offsets`)."""
        if fused:
            temperature = self.fusion_temperature_for(n_fused, finger_known)
        elif finger_known:
            temperature = float(fusion.finger_calibration(self)["temperature"])
        else:
            temperature = self.temperature
        return cal.sigmoid(np.asarray(logits, dtype=np.float64) / temperature)

    def decide(
        self, p_female: float, min_confidence: float | None = None, finger_known: bool = False
    ) -> dict[str, Any]:
        """Label and confidence for one calibrated probability; below ``min_confidence`` -> uncertain."""
        calibration = fusion.finger_calibration(self) if finger_known else None
        threshold = float(calibration["threshold"]) if calibration else self.threshold
        if min_confidence is None:
            min_confidence = float(calibration["min_confidence"]) if calibration else self.min_confidence
        is_female = p_female >= threshold
        confidence = float(cal.confidence(p_female, threshold))
        label = LABELS[1] if is_female else LABELS[0]
        if min_confidence and confidence < min_confidence:
            label = UNCERTAIN
        return {"label": label, "p_female": round(float(p_female), 6), "confidence": round(float(confidence), 6)}

    def finger_offsets(self, fingers: Sequence[str | None]) -> np.ndarray:
        """Each image's finger offset (0 where no finger is given; names as :func:`finger_name`
        reads them); ValueError for a model without per-finger calibration or a finger it does
        not know."""
        return fusion.finger_offsets(self, fingers)

    def crops(self, image: ImageSource, detect: bool | None = None) -> tuple[np.ndarray, list[Crop]]:
        rgb = load_image(image)
        use_detector = self.preprocess.detect if detect is None else detect
        detector = self.detector if use_detector and self.modality_spec.detects_faces else None
        return rgb, crops_for_image(rgb, self.preprocess, detector, detect=use_detector)

    # ----------------------------------------------------------------------------- public API
    def predict(
        self,
        image: ImageSource,
        detect: bool | None = None,
        min_confidence: float | None = None,
        finger: str | None = None,
    ) -> dict[str, Any]:
        """Classify every face in one image (or the whole image with ``detect=False``); ``finger``
        (fingerprints: thumb, index, middle, ring or little) uses the per-finger calibration.

        ``image``: a path, encoded bytes, a PIL image or an RGB (or gray) uint8 array; OpenCV's BGR
        arrays must be converted first."""
        return self.predict_batch([image], detect, min_confidence, fingers=[finger])[0]

    def predict_batch(
        self,
        images: Iterable[ImageSource],
        detect: bool | None = None,
        min_confidence: float | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        fingers: Sequence[str | None] | None = None,
    ) -> list[dict[str, Any]]:
        """Classify many images; all their crops go through the network in true batches.

        A bad image yields ``{"faces": [], "error": "..."}`` and never stops the others; an item
        that is no image source at all (None, a file object) is a TypeError before any work. ``fingers``:
        each image's finger where known (see :meth:`predict`).
        """
        classified = self.predict_batch_with_logits(images, detect, min_confidence, batch_size, fingers)
        return [result for result, _ in classified]

    def predict_batch_with_logits(
        self,
        images: Iterable[ImageSource],
        detect: bool | None = None,
        min_confidence: float | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        fingers: Sequence[str | None] | None = None,
    ) -> list[tuple[dict[str, Any], np.ndarray]]:
        """:meth:`predict_batch` with each image's raw logits (one per classified crop, none for a
        failed image), so that they can be fused (:meth:`fuse`) without running the network again."""
        images = _image_list(images, "predict_batch")
        _check_min_confidence(min_confidence)
        fingers, offsets = fusion.fingers_of(self, images, fingers)
        results: list[dict[str, Any]] = []
        pending: list[tuple[dict[str, Any], Crop, int]] = []
        for number, image in enumerate(images):
            result: dict[str, Any] = {
                "path": str(image) if isinstance(image, (str, Path)) else None,
                "faces": [],
                "error": None,
            }
            try:
                _, crops = self.crops(image, detect)
                pending.extend((result, crop, number) for crop in crops)
            except ImageError as exc:
                result["error"] = str(exc)
            results.append(result)
        logits_of: list[list[float]] = [[] for _ in images]  # per image
        if pending:
            logits = self.logits([crop.pixels for _, crop, _ in pending], batch_size)
            known = np.array([fingers[number] is not None for _, _, number in pending])
            p_plain = self.probability(logits)
            p_known = (
                self.probability(logits - offsets[[n for _, _, n in pending]], finger_known=True)
                if known.any()
                else p_plain
            )
            for (result, crop, number), logit, p in zip(pending, logits, np.where(known, p_known, p_plain).tolist()):
                if not np.isfinite(logit):
                    result["error"] = NON_FINITE_OUTPUT
                elif not result["error"]:
                    finger = fingers[number]
                    face = {"box": crop.box, **self.decide(p, min_confidence, finger_known=finger is not None)}
                    result["faces"].append({**face, "finger": finger} if finger else face)
                    logits_of[number].append(float(logit))
        for number, result in enumerate(results):  # all or nothing: an image with a failed face keeps no faces
            if result["error"]:
                result["faces"], logits_of[number] = [], []
        return [(result, np.array(logits_of[number], dtype=np.float32)) for number, result in enumerate(results)]

    def predict_person(
        self,
        images: Iterable[ImageSource],
        min_confidence: float | None = None,
        fingers: Sequence[str | None] | None = None,
    ) -> dict[str, Any]:
        """Fuse several images of ONE person (a list or any iterable; one image alone is a TypeError)
        by averaging their logits; a file given twice (identical content, whatever its name) counts
        once, and an unreadable one is left out.
        ``fingers``: each image's finger where known (see :meth:`fuse`). Fingerprint models only:
        a face model would need a face found in each photo first."""
        images = _image_list(images, "predict_person")
        if not self.modality_spec.fuses_per_person:
            raise ValueError(f"predict_person fuses fingerprints; {self.path.name} is a {self.modality} model")
        fingers, _ = fusion.fingers_of(self, images, fingers)
        crops, used, used_fingers = [], [], []
        for index in distinct_files(images):
            try:
                _, image_crops = self.crops(images[index], detect=False)
            except ImageError:
                continue
            crops.append(image_crops[0].pixels)
            used.append(str(images[index]) if isinstance(images[index], (str, Path)) else None)
            used_fingers.append(fingers[index])
        return self.fuse(self.logits(crops), used, min_confidence, used_fingers)

    def fuse(
        self,
        logits: Sequence[float],
        sources: Sequence[str | None],
        min_confidence: float | None = None,
        fingers: Sequence[str | None] | None = None,
    ) -> dict[str, Any]:
        """One person's answer from the logits of their images (one each): the mean logit, each
        known finger's offset removed first (``fingers``; with all ten fingers the offsets cancel,
        with a few they would tilt the mean), calibrated with the temperature fitted on validation
        subjects for that many prints (:meth:`fusion_temperature_for`); with every finger named, with
        the temperature, threshold and abstention level fitted without the offsets."""
        _check_min_confidence(min_confidence)
        logits = np.asarray(logits, dtype=np.float64)
        if not len(logits):
            raise ValueError("none of the given images could be read")
        if not np.isfinite(logits).all():
            raise ValueError(NON_FINITE_OUTPUT)
        if len(sources) != len(logits) or (fingers is not None and len(fingers) != len(logits)):
            raise ValueError(
                f"one source and one finger (or None) per logit: {len(logits)} logits, {len(sources)} sources"
                + (f", {len(fingers)} fingers" if fingers is not None else "")
            )
        return fusion.fused_answer(self, logits, sources, min_confidence, fingers)

    def info(self) -> dict[str, Any]:
        """Summary of the model for humans and the API."""
        meta = self.metadata
        test = meta.get("metrics", {}).get("test", {})
        fuses = self.modality_spec.fuses_per_person
        return {
            "name": meta.get("name"),
            "modality": self.modality,
            "path": str(self.path),
            "labels": meta["labels"],
            "threshold": self.threshold,
            "temperature": self.temperature,
            "fusion_temperature": self.fusion_temperature if fuses else None,
            "fusion_temperatures": self.fusion_temperatures if fuses else None,
            "min_confidence": self.min_confidence,
            "input_size": self.preprocess.input_size,
            "architecture": meta.get("architecture"),
            "architecture_summary": _architecture_summary(meta.get("architecture")),
            "test_accuracy": test.get("accuracy"),
            "test_balanced_accuracy": test.get("balanced_accuracy"),
            "test_groups": _group_accuracy(test.get("groups") or {}),
            "test_per_person_balanced_accuracy": meta.get("metrics", {})
            .get("test_per_subject", {})
            .get("balanced_accuracy"),
            "training_command": meta.get("training", {}).get("command"),
            "data_hash": meta.get("training", {}).get("data_hash"),
            "size_mb": round(self.path.stat().st_size / 1e6, 2),
            "fingers": list(self.finger_known["offsets"]) if self.finger_known else [],
            "finger_threshold": float(self.finger_known["threshold"]) if self.finger_known else None,
        }


def _group_accuracy(groups: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Test accuracy and balanced accuracy of each group of each single attribute (age band, race,
    finger, hand; the crossed tables stay in the card), in the metadata's order."""
    return {
        attribute: [
            {
                "group": name,
                "n": row.get("n"),
                "accuracy": row.get("accuracy"),
                "balanced_accuracy": row.get("balanced_accuracy"),
            }
            for name, row in table.items()
            if name != "_summary" and isinstance(row, dict)
        ]
        for attribute, table in groups.items()
        if "_x_" not in attribute and isinstance(table, dict)
    }


def _architecture_summary(architecture: Any) -> Any:
    """``"25 × small_resnet"`` for an ensemble of 25 alike members (metadata lists each)."""
    if not isinstance(architecture, str) or not architecture:
        return architecture
    return counted_architectures(architecture, str)


def _image_list(images: Iterable[ImageSource], method: str) -> list[ImageSource]:
    """``images`` as a list, refusing one image (a path's characters or an array's rows are not images)."""
    single = isinstance(images, (str, os.PathLike, bytes, bytearray, Image.Image))
    if single or (isinstance(images, np.ndarray) and images.ndim <= 3):
        raise TypeError(f"{method} takes a list (or an N x H x W x C array) of images; for one use predict")
    # before any work: a wrong type is the caller's mistake, not a bad image; path-like objects as Paths
    return [check_image_source(image) for image in images]


def _check_min_confidence(min_confidence: float | None) -> None:
    if min_confidence is not None and not 0.0 <= min_confidence <= 1.0:
        raise ValueError(f"min_confidence must be from 0 to 1 (or None for the model's), not {min_confidence}")


def content_key(image: ImageSource) -> tuple:
    """What makes two inputs the same image: their bytes (a file's content, not its name); a file
    that cannot be read is keyed by its resolved path (it fails later, once)."""
    if isinstance(image, (str, Path)):
        try:
            return ("bytes", hashlib.sha256(Path(image).read_bytes()).digest())
        except OSError:
            return ("path", Path(image).resolve())
    if isinstance(image, (bytes, bytearray)):
        return ("bytes", hashlib.sha256(image).digest())
    if isinstance(image, Image.Image):  # what decoding depends on: pixels, palette, EXIF orientation
        palette = bytes(image.getpalette() or [])
        orientation = image.getexif().get(0x0112)
        return ("pil", image.mode, image.size, orientation, hashlib.sha256(image.tobytes() + palette).digest())
    array = np.ascontiguousarray(image)
    return ("array", array.dtype.str, array.shape, hashlib.sha256(array.tobytes()).digest())


def distinct_files(images: Sequence[ImageSource], names: Sequence[str] | None = None) -> list[int]:
    """The positions of ``images`` without repeats of one image (identical content, whatever the
    name or path; the first is kept, with a warning naming both, by ``names`` if given): one
    person's print given twice must not count twice."""
    labels = list(names) if names is not None else [_label(image, i) for i, image in enumerate(images)]
    kept, first = [], {}
    for index, image in enumerate(images):
        key = content_key(image)
        if key in first:
            log.warning("%s repeats %s (identical content); it is fused once", labels[index], labels[first[key]])
            continue
        first[key] = index
        kept.append(index)
    return kept


def _label(image: ImageSource, index: int) -> str:
    return str(image) if isinstance(image, (str, Path)) else f"image {index + 1}"


def model_files(path: str | Path | None = None, modality: str = "face") -> tuple[Path, dict[str, Any]]:
    """A model's ONNX file and its metadata (only the JSON is read, migrated by
    :func:`~genderclass.inference.metadata.read_metadata`), found as :meth:`GenderClassifier.load`
    finds them: ``None`` = the bundled model of ``modality``."""
    onnx_path = bundled_model_path(modality) if path is None else resolve_model_path(path)
    metadata_path = onnx_path.with_suffix(".json")
    if not metadata_path.is_file():
        raise FileNotFoundError(f"model metadata not found next to the model: {metadata_path}")
    return onnx_path, read_metadata(metadata_path)


def resolve_model_path(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        for candidate in (path / "export", path):
            found = sorted(candidate.glob("*.onnx")) if candidate.is_dir() else []
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise ValueError(f"{candidate} holds several models; name the .onnx file")
        raise FileNotFoundError(f"no .onnx model in {path}")
    if path.suffix == ".json":
        path = path.with_suffix(".onnx")
    if not path.is_file():
        raise FileNotFoundError(f"model not found: {path}")
    return path
