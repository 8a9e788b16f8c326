"""Draw boxes, labels and probabilities on a copy of an image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..imageio import load_image

COLORS = {"female": (230, 90, 160), "male": (60, 130, 230), "uncertain": (150, 150, 150)}  # RGB


def draw_faces(rgb: np.ndarray, faces: list[dict[str, Any]]) -> np.ndarray:
    """Return a copy of ``rgb`` with each face's box and "label p_female" drawn."""
    canvas = rgb.copy()
    thickness = max(1, round(max(rgb.shape[:2]) / 300))
    scale = max(0.4, max(rgb.shape[:2]) / 900)
    for face in faces:
        x1, y1, x2, y2 = face["box"]
        color = COLORS.get(face["label"], (255, 255, 0))
        cv2.rectangle(canvas, (x1, y1), (x2, y2), color, thickness)
        text = f"{face['label']} p(f)={face['p_female']:.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        top = max(0, y1 - th - base - 2)
        cv2.rectangle(canvas, (x1, top), (x1 + tw + 4, top + th + base + 2), color, -1)
        cv2.putText(
            canvas, text, (x1 + 2, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA
        )
    return canvas


def write_annotated(
    path: str | Path, result: dict[str, Any], out_dir: str | Path, taken: set[str] | None = None
) -> Path:
    """Write ``out_dir/<stem>.annotated.png``; a stem already written in this run (``taken``) gets
    ``-2``, ``-3``, ... so same-named inputs from different folders or formats never overwrite."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(path).stem
    name, counter = f"{stem}.annotated.png", 1
    while taken is not None and name in taken:
        counter += 1
        name = f"{stem}-{counter}.annotated.png"
    if taken is not None:
        taken.add(name)
    target = out_dir / name
    canvas = draw_faces(load_image(path), result["faces"])
    # encode in memory and write with Python: cv2.imwrite crashes on names that are not valid UTF-8
    # and reports other failures (a name too long) only by its return value
    encoded, png = cv2.imencode(".png", cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    if not encoded:
        raise OSError(f"could not encode the annotated image of {path}")
    target.write_bytes(png.tobytes())
    return target
