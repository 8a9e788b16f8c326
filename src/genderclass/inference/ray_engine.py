"""Batch prediction on a Ray cluster (``predict --engine ray``, :func:`predict_dataset`).

Ray Data streams the inputs through ``map_batches`` over a pool of actors; each actor loads the
model once (:class:`Predictor`) and classifies whole batches with the same predict service as the
local engine, so each file gets exactly the result that ``predict`` gives it locally. A worker
that dies mid-batch is restarted by Ray and its batch is run again (Ray Data's actor defaults:
``max_restarts=-1``, ``max_task_retries=-1``); a file that cannot be read is an error row, never a
lost one. Needs the ``ray`` extra: ``pip install "genderclass[ray]"``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import DEFAULT_BATCH_SIZE, IMAGE_EXTENSIONS

if TYPE_CHECKING:
    import pyarrow as pa
    import ray.data

log = logging.getLogger(__name__)

IMAGE_COLUMNS = ("bytes", "image", "path", "item")  # what an input dataset's images may be, in this order


def result_schema() -> pa.Schema:
    """The rows of a prediction dataset (and of ``--out`` Parquet shards): the ``predict`` JSON
    schema as columns; ``finger`` is null where no finger was given."""
    import pyarrow as pa

    face = pa.struct(
        [
            ("box", pa.list_(pa.int64())),
            ("label", pa.string()),
            ("p_female", pa.float64()),
            ("confidence", pa.float64()),
            ("finger", pa.string()),
        ]
    )
    return pa.schema([("path", pa.string()), ("faces", pa.list_(face)), ("error", pa.string())])


def results_table(results: list[dict[str, Any]]) -> pa.Table:
    """Prediction results (the ``predict`` JSON schema) as an Arrow table of :func:`result_schema`."""
    import pyarrow as pa

    rows = [
        {
            "path": result["path"],
            "faces": [{**face, "finger": face.get("finger")} for face in result["faces"]],
            "error": result["error"],
        }
        for result in results
    ]
    return pa.Table.from_pylist(rows, schema=result_schema())


def result_from_row(row: dict[str, Any]) -> dict[str, Any]:
    """One row of a prediction dataset back as the ``predict`` JSON line (``finger`` only where given)."""
    faces = []
    for face in row["faces"] or []:
        item = {"box": list(face["box"]), **{key: face[key] for key in ("label", "p_female", "confidence")}}
        faces.append({**item, "finger": face["finger"]} if face.get("finger") else item)
    return {"path": row["path"], "faces": faces, "error": row["error"]}


class Predictor:
    """A Ray Data actor: loads the model once, then classifies batches of paths, encoded bytes or
    decoded images (the first of the columns ``bytes``, ``image``, ``path``, ``item`` present)."""

    def __init__(
        self,
        model: str | None = None,
        modality: str | None = None,
        device: str = "cpu",
        threads: int = 1,
        detect: bool | None = None,
        min_confidence: float | None = None,
        finger: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        from .classifier import GenderClassifier

        self.clf = GenderClassifier.load(model, modality=modality, threads=threads, device=device)
        self.detect, self.min_confidence, self.batch_size = detect, min_confidence, batch_size
        self.finger = finger

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        images, paths = batch_images(batch)
        fingers = [self._finger(path) for path in paths]
        try:
            results = self._predict(images, fingers)
        except Exception as exc:  # noqa: BLE001 - one bad item must not fail the batch: each is tried alone
            log.warning("a batch failed (%s); classifying its %d files one by one", exc, len(images))
            results = [self._predict_one(image, finger) for image, finger in zip(images, fingers)]
        for result, path in zip(results, paths):
            result["path"] = path
        return results_table(results)

    def _predict(self, images: list[Any], fingers: list[str | None]) -> list[dict[str, Any]]:
        return self.clf.predict_batch(
            images, self.detect, self.min_confidence, batch_size=self.batch_size, fingers=fingers
        )

    def _predict_one(self, image: Any, finger: str | None) -> dict[str, Any]:
        try:
            return self._predict([image], [finger])[0]
        except Exception as exc:  # noqa: BLE001 - reported on the file's own row
            return {"path": None, "faces": [], "error": f"could not be classified: {type(exc).__name__}: {exc}"}

    def _finger(self, path: str | None) -> str | None:
        if self.finger != "auto":
            return self.finger
        from ..data.readers import finger_in_name

        return finger_in_name(posixpath.basename(path)) if path else None


def batch_images(batch: dict[str, np.ndarray]) -> tuple[list[Any], list[str | None]]:
    """A batch's images (as the predict service takes them) and their paths (None where unknown)."""
    column = next((name for name in IMAGE_COLUMNS if name in batch), None)
    if column is None:
        raise ValueError(
            f"a dataset to classify needs one of the columns {', '.join(IMAGE_COLUMNS)}; got {list(batch)}"
        )
    values = list(batch[column])
    if column in ("path", "item"):
        paths = [str(value) for value in values]
        return paths, paths
    # encoded files (read_binary_files), or decoded uint8 RGB or gray arrays (read_images)
    values = [bytes(value) if column == "bytes" else np.asarray(value) for value in values]
    paths = [str(p) for p in batch["path"]] if "path" in batch else [None] * len(values)
    return values, paths


def predict_dataset(
    dataset: ray.data.Dataset,
    model: str | os.PathLike | None = None,
    modality: str | None = None,
    *,
    device: str = "cpu",
    workers: int | None = None,
    threads: int = 1,
    batch_size: int = DEFAULT_BATCH_SIZE,
    detect: bool | None = None,
    min_confidence: float | None = None,
    finger: str | None = None,
    predictor: type[Predictor] = Predictor,
) -> ray.data.Dataset:
    """Classify a ``ray.data.Dataset`` of images on the cluster Ray is connected to (lazy, as every
    Ray Data transform); returns a dataset of ``path``, ``faces``, ``error`` (:func:`result_schema`).

    The input holds its images in one of the columns ``bytes`` (``ray.data.read_binary_files``),
    ``image`` (``ray.data.read_images``; uint8 RGB arrays), ``path`` or ``item`` (paths every worker
    can read, e.g. ``ray.data.from_items``); a ``path`` column beside ``bytes`` or ``image`` names
    the rows (``include_paths=True``). ``workers`` actors (default: the cluster's CPUs but one, or its
    GPUs with ``device="cuda"``) each load the model once and use ``threads`` CPU threads, or one
    GPU. ``model``: a path every worker can read (None: the bundled model of ``modality``). The
    other arguments mean what they mean for :meth:`GenderClassifier.predict_batch`; ``finger="auto"``
    reads each print's finger from its SOCOFing-style name."""
    import ray

    use_gpu = device == "cuda"
    workers = workers or default_workers(use_gpu)
    settings = {
        "model": str(model) if model is not None else None,
        "modality": modality,
        "device": device,
        "threads": threads,
        "detect": detect,
        "min_confidence": min_confidence,
        "finger": finger,
        "batch_size": batch_size,
    }
    return dataset.map_batches(
        predictor,
        fn_constructor_kwargs=settings,
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=0 if use_gpu else threads,
        num_gpus=1 if use_gpu else 0,
    )


def default_workers(use_gpu: bool = False) -> int:
    """The cluster's GPUs, or its CPUs but one (left for reading and the driver); at least one."""
    import ray

    resources = ray.cluster_resources()
    if use_gpu:
        if not resources.get("GPU"):
            from ..runtime import DeviceUnavailableError

            raise DeviceUnavailableError("--device cuda: the Ray cluster has no GPU (its actors would wait for one)")
        return max(1, int(resources["GPU"]))
    return max(1, int(resources.get("CPU", 1)) - 1)


def check_new_output(out: str) -> None:
    """Refuse an output folder or URI that already holds files: Ray appends to it, and the counts
    read back would mix in an earlier job's rows."""
    import pyarrow.fs

    filesystem, path = pyarrow.fs.FileSystem.from_uri(out) if is_uri(out) else (pyarrow.fs.LocalFileSystem(), out)
    info = filesystem.get_file_info(path)
    if info.type == pyarrow.fs.FileType.NotFound:
        return
    if info.type != pyarrow.fs.FileType.Directory or filesystem.get_file_info(pyarrow.fs.FileSelector(path)):
        raise ValueError(f"--out {out} exists and is not an empty folder: name a new one")


def is_uri(pattern: str) -> bool:
    """A remote (or ``file://``) URI that Ray's readers open, rather than a local path or glob."""
    scheme, sep, _ = pattern.partition("://")
    return bool(sep) and scheme.isidentifier()


def input_datasets(local_paths: list[Path], uris: list[str], blocks: int) -> list[ray.data.Dataset]:
    """The inputs as datasets: local paths as a ``path`` column (each worker reads its files, so on
    a cluster they must be on storage every node sees), URIs through ``ray.data.read_binary_files``
    (files, or folders read recursively for image extensions)."""
    import ray

    datasets = []
    if local_paths:
        items = [{"path": str(path)} for path in local_paths]
        datasets.append(ray.data.from_items(items, override_num_blocks=max(1, min(len(items), blocks))))
    if uris:
        extensions = [ext.lstrip(".") for ext in IMAGE_EXTENSIONS]
        extensions += [ext.upper() for ext in extensions]
        for uri in uris:  # each on its own: the scheme put back on the paths the reader returns
            scheme = uri.split("://", 1)[0]
            found = ray.data.read_binary_files(uri, include_paths=True, file_extensions=extensions)
            datasets.append(found.map_batches(_with_scheme, fn_kwargs={"scheme": scheme}, batch_format="numpy"))
    return datasets


def _with_scheme(batch: dict[str, np.ndarray], scheme: str) -> dict[str, np.ndarray]:
    prefix = f"{scheme}://"
    batch["path"] = np.array([p if "://" in str(p) else prefix + str(p) for p in batch["path"]], dtype=object)
    return batch


@contextlib.contextmanager
def ray_session(address: str | None = None, verbose: int = 0, ray_progress: bool = False) -> Iterator[None]:
    """Connected to Ray for the block: to the cluster at ``address``, or a local one started here and
    shut down after (one already connected in this process is used as it is and left running). No
    usage statistics are sent; Ray Data's own progress bars only with ``ray_progress`` (else the
    caller draws one)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    import ray.data

    ray_logging = logging.DEBUG if verbose >= 2 else logging.WARNING if verbose else logging.ERROR
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(ray_logging)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = ray_progress
    context.print_on_execution_start = False
    if ray.is_initialized():
        yield
        return
    ray.init(
        address=address,
        include_dashboard=False,
        log_to_driver=verbose >= 1,
        logging_level=ray_logging,
        configure_logging=verbose >= 2,
    )
    try:
        yield
    finally:
        ray.shutdown()
