"""Decode, hash, detect and crop a dataset ONCE into an array file; epochs read only this cache.

The cache key covers the file list (names, sizes, labels, subjects and attributes) and the
preprocessing config, so a change to any of them builds a new cache (older ones stay on disk).
Corrupt or unreadable images are reported and skipped; a cache file that cannot be read (cut short,
damaged) is built again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import multiprocessing as mp
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from ..config import PreprocessConfig
from ..imageio import ImageError, load_image
from ..modalities import modality_for
from ..preprocess import crop_chip, outside_image
from ..progress import progress
from .readers import Sample

log = logging.getLogger(__name__)
CACHE_VERSION = 5

_detector = None
_cfg: PreprocessConfig | None = None


@dataclass
class DatasetCache:
    images: np.ndarray  # (N, S, S, C) uint8
    labels: np.ndarray  # (N,) int64
    paths: np.ndarray  # (N,) str
    sha1: np.ndarray  # (N,) str
    phash: np.ndarray  # (N,) uint64
    detected: np.ndarray  # (N,) bool
    subjects: np.ndarray  # (N,) str ("" = none)
    attrs: list[dict[str, str]]
    skipped: list[str]  # "path: reason" for unreadable files
    # faces: which crop pixels lie beyond the image's edge, (N, S, ceil(S / 8)) bits (np.packbits)
    outside_bits: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def outside(self) -> np.ndarray | None:
        """(N, S, S) bool: the crop pixels beyond the image's edge (faces); unpacked on each call."""
        if self.outside_bits is None:
            return None
        return np.unpackbits(self.outside_bits, axis=-1, count=self.images.shape[2]).astype(bool)

    def data_hash(self) -> str:
        """Hash of the training data's content (sorted sha1s + labels)."""
        digest = hashlib.sha256()
        for sha, label in sorted(zip(self.sha1.tolist(), self.labels.tolist())):
            digest.update(f"{sha}:{label}\n".encode())
        return digest.hexdigest()[:16]


_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def _single_threaded_environment() -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in _THREAD_VARIABLES}
    os.environ.update({name: "1" for name in _THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _init_worker(cfg: PreprocessConfig) -> None:
    global _detector, _cfg
    import cv2

    cv2.setNumThreads(1)
    _cfg = cfg
    if modality_for(cfg.modality).detects_faces and cfg.detect:
        from ..faces.detect import default_detector

        _detector = default_detector()


class _Processed(NamedTuple):
    """One file through the cache builder (``error`` set: unreadable, nothing else filled)."""

    path: str
    pixels: np.ndarray | None = None
    sha1: str = ""
    phash: int = 0
    detected: bool = False
    outside: np.ndarray | None = None  # faces: crop pixels beyond the image's edge
    error: str | None = None


def _process(path: str) -> _Processed:
    import imagehash

    assert _cfg is not None
    try:
        raw = Path(path).read_bytes()
        rgb = load_image(raw)
        crop, detected = crop_chip(rgb, _cfg, _detector)
        beyond = modality_for(_cfg.modality).crops_beyond_edge
        outside = outside_image(*rgb.shape[:2], crop.face, _cfg) if beyond else None
        phash = int(str(imagehash.phash(Image.fromarray(rgb))), 16)
        return _Processed(path, crop.pixels, hashlib.sha1(raw).hexdigest(), phash, detected, outside)
    except (ImageError, OSError) as exc:
        return _Processed(path, error=str(exc))


def cache_key(samples: list[Sample], cfg: PreprocessConfig) -> str:
    digest = hashlib.sha256(f"v{CACHE_VERSION}".encode())
    digest.update(json.dumps(cfg.to_dict(), sort_keys=True).encode())
    for sample in sorted(samples, key=lambda s: s.path):
        try:  # a file edited or replaced in place changes its modification time, if not its size
            stat = Path(sample.path).stat()
            version = f"{stat.st_size}|{stat.st_mtime_ns}"
        except OSError:
            version = "-1"
        attrs = json.dumps(sample.attrs, sort_keys=True)  # the cache stores subjects and attributes too
        digest.update(f"{sample.path}|{version}|{sample.label}|{sample.subject or ''}|{attrs}\n".encode())
    return digest.hexdigest()[:20]


def _report_detection(cache: DatasetCache, cfg: PreprocessConfig, built: bool) -> None:
    """How many face crops the detector framed (said when the cache is built); a warning, each
    time the cache is used, when it framed fewer than half: the rest are whole images."""
    if not modality_for(cfg.modality).detects_faces or not cfg.detect:
        return
    found = int(cache.detected.sum())
    if built:
        log.info("detector found the face in %d of %d chips (others use the whole chip)", found, len(cache))
    if found < len(cache) / 2:  # the model would learn whole images, never the face crops it is given later
        log.warning(
            "the face detector found a face in only %d of %d images: are they face photos? "
            "(fingerprints: --modality fingerprint)",
            found,
            len(cache),
        )


def build_cache(samples: list[Sample], cfg: PreprocessConfig, cache_dir: str | Path, workers: int = 2) -> DatasetCache:
    """Return the cached arrays for ``samples``, building them if needed.

    With ``workers > 1`` the workers are spawned processes: a script calling this must guard its
    entry point with ``if __name__ == "__main__":`` (as for PyTorch data-loader workers).
    """
    cache_dir = Path(cache_dir)
    key = cache_key(samples, cfg)
    file = cache_dir / f"{cfg.modality}-{key}.npz"
    log.debug("cache key %s for %d files and %s", key, len(samples), cfg.to_dict())
    if file.exists():
        try:
            cache = load_cache(file)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            # cut short (a full disk, a copy interrupted) or damaged: built again and replaced
            log.warning("cache file %s is unreadable (%s): preprocessing the data again", file, type(exc).__name__)
        else:
            log.info("using cached preprocessed data %s", file)
            _report_detection(cache, cfg, built=False)
            return cache
    try:  # before the work: a file in the way would otherwise fail it only once done
        cache_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        in_the_way = next((p for p in (cache_dir, *cache_dir.parents) if p.exists() and not p.is_dir()), cache_dir)
        raise NotADirectoryError(
            f"cannot make the cache folder {cache_dir}: {in_the_way} is a file, not a folder (--cache-dir)"
        ) from exc
    log.info("preprocessing %d images once into %s", len(samples), file)
    by_path = {s.path: s for s in samples}
    results = []
    paths = [s.path for s in samples]
    if workers > 1 and len(paths) > 200:
        # Fresh (spawned) workers with one thread per native library: a forked child inherits this
        # process's thread settings (OpenMP, OpenBLAS), whose idle threads spin and made workers up to
        # 5x slower. The variables are read when each worker loads those libraries.
        with (
            _single_threaded_environment(),
            mp.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(cfg,)) as pool,
        ):
            for item in progress(pool.imap(_process, paths, chunksize=32), total=len(paths), desc="preprocess"):
                results.append(item)
    else:
        _init_worker(cfg)
        for path in progress(paths, desc="preprocess"):
            results.append(_process(path))
    kept = [r for r in results if r.error is None]
    skipped = [f"{r.path}: {r.error}" for r in results if r.error is not None]
    for line in skipped:
        log.warning("skipped unreadable file %s", line)
    if not kept:
        raise ValueError("no readable images in the dataset")
    spec = modality_for(cfg.modality)
    cache = DatasetCache(
        images=np.stack([r.pixels for r in kept]),
        labels=np.array([by_path[r.path].label for r in kept], dtype=np.int64),
        paths=np.array([r.path for r in kept]),
        sha1=np.array([r.sha1 for r in kept]),
        phash=np.array([r.phash for r in kept], dtype=np.uint64),
        detected=np.array([r.detected for r in kept], dtype=bool),
        subjects=np.array([by_path[r.path].subject or "" for r in kept]),
        attrs=[by_path[r.path].attrs for r in kept],
        skipped=skipped,
        outside_bits=np.packbits(np.stack([r.outside for r in kept]), axis=-1) if spec.crops_beyond_edge else None,
    )
    _report_detection(cache, cfg, built=True)
    # a name of its own: two runs building the same cache at once must not share the partial file
    tmp = file.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(
        tmp,
        images=cache.images,
        labels=cache.labels,
        paths=cache.paths,
        sha1=cache.sha1,
        phash=cache.phash,
        detected=cache.detected,
        subjects=cache.subjects,
        attrs=np.array(json.dumps(cache.attrs)),
        skipped=np.array(json.dumps(skipped)),
        **({} if cache.outside_bits is None else {"outside_bits": cache.outside_bits}),
    )
    tmp.replace(file)
    _report_other_caches(file)
    return cache


def _report_other_caches(kept: Path) -> None:
    """Caches are never updated in place (new data, preprocessing or cache format = a new file), so
    old ones pile up: say how much disk they take, once, when a new one is written."""
    sizes = []
    for other in kept.parent.glob("*.npz"):
        if other != kept and not other.name.endswith(".tmp.npz"):
            with contextlib.suppress(OSError):  # deleted meanwhile: a log line must not stop a run
                sizes.append(other.stat().st_size)
    if sizes:
        log.info(
            "%s also holds %d other cache file(s), %.2f GB: delete those you no longer train on",
            kept.parent,
            len(sizes),
            sum(sizes) / 1e9,
        )


def load_cache(file: str | Path) -> DatasetCache:
    with np.load(file) as data:
        return DatasetCache(
            images=data["images"],
            labels=data["labels"],
            paths=data["paths"],
            sha1=data["sha1"],
            phash=data["phash"],
            detected=data["detected"],
            subjects=data["subjects"],
            attrs=json.loads(str(data["attrs"])),
            skipped=json.loads(str(data["skipped"])),
            outside_bits=data["outside_bits"] if "outside_bits" in data.files else None,
        )
