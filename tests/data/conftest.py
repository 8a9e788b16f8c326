"""Data tests run against the real datasets in ``../shared/datasets`` (relative to the repository
root) and the bundled models; each is skipped cleanly when what it needs is absent."""

from __future__ import annotations

from pathlib import Path

import pytest


def _need(path: Path, what: str) -> Path:
    if not path.is_dir():
        pytest.skip(f"{what} not found at {path} (datasets are not part of the repository)")
    return path


@pytest.fixture(scope="session")
def utkface_dir(datasets_dir) -> Path:
    return _need(datasets_dir / "utkface", "UTKFace")


@pytest.fixture(scope="session")
def socofing_dir(datasets_dir) -> Path:
    return _need(datasets_dir / "socofing", "SOCOFing")


@pytest.fixture(scope="session")
def socofing_real_dir(socofing_dir) -> Path:
    return _need(socofing_dir / "Real", "SOCOFing Real/")
