"""The modalities, one module each (:mod:`.face`, :mod:`.fingerprint`), and their registry.

A :class:`Modality` holds what differs between them: defaults, preprocessing particulars, the
threshold rule, extra metrics, fusion and fingers, card text. Look one up once by name with
:func:`modality_for` and ask it, instead of comparing names. This package sits at the bottom of the
import graph: it imports nothing of genderclass at load time (heavy things inside its methods).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from .base import Modality
from .face import FACE
from .fingerprint import FINGERPRINT

REGISTRY: Mapping[str, Modality] = MappingProxyType({m.name: m for m in (FACE, FINGERPRINT)})
NAMES: tuple[str, ...] = tuple(REGISTRY)  # "face", "fingerprint": --modality's choices, in this order


def modality_for(name: str) -> Modality:
    """The modality called ``name``; ValueError naming the known ones for any other name."""
    modality = REGISTRY.get(name) if isinstance(name, str) else None
    if modality is None:
        raise ValueError(f"unknown modality {name!r}; expected one of {NAMES}")
    return modality


def modality_of_format(fmt: str) -> Modality | None:
    """The modality whose own dataset reader ``fmt`` is ("socofing": fingerprint), None for a
    general reader (folder, csv) or an unknown one."""
    return next((m for m in REGISTRY.values() if m.reader_format == fmt), None)


__all__ = ["FACE", "FINGERPRINT", "NAMES", "REGISTRY", "Modality", "modality_for", "modality_of_format"]
