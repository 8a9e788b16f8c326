"""The public CLI contract: JSON lines / CSV schema on stdout, exit codes, options, help texts."""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import genderclass.faces.detect as detect_module
from genderclass.cli import commands
from genderclass.cli.main import build_parser, main
from genderclass.config import TrainConfig
from genderclass.faces.detect import Face

RESULT_KEYS = {"path", "faces", "error"}
FACE_KEYS = {"box", "label", "p_female", "confidence"}
FUSED_KEYS = {"paths", "n", "label", "p_female", "confidence"}
LABELS = {"male", "female", "uncertain"}


def _run(capsys, argv: list[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _json_lines(out: str) -> list[dict]:
    lines = out.splitlines()
    assert lines, "nothing on stdout"
    return [json.loads(line) for line in lines]  # every stdout line must be JSON


@pytest.fixture
def photo_dir(tmp_path, make_colour_image, write_image) -> Path:
    """Three good images of different sizes/formats, a corrupt JPEG, a text file named .png, and a
    non-image extension that folder expansion ignores."""
    folder = tmp_path / "photos"
    write_image(folder / "a_dark.jpg", make_colour_image(64, 48, (40, 50, 60), seed=1), quality=92)
    write_image(folder / "b_bright.png", make_colour_image(50, 90, (230, 200, 180), seed=2))
    write_image(folder / "sub" / "c_red.bmp", make_colour_image(33, 33, (220, 30, 40), seed=3))
    good = (folder / "a_dark.jpg").read_bytes()
    (folder / "d_corrupt.jpg").write_bytes(good[: len(good) // 3])
    (folder / "e_text.png").write_text("this is a text file with an image extension\n")
    (folder / "readme.txt").write_text("not an image extension: not an input")
    return folder


GOOD = {"a_dark.jpg": (64, 48), "b_bright.png": (50, 90), "c_red.bmp": (33, 33)}  # name -> (width, height)
BAD = {"d_corrupt.jpg", "e_text.png"}


class _FakeDetector:
    """Two faces per image, one sticking out of the frame (boxes must be clipped to the image)."""

    def detect(self, rgb):
        h, w = rgb.shape[:2]
        marks = np.array(
            [[w * 0.3, h * 0.3], [w * 0.15, h * 0.32], [w * 0.2, h * 0.4], [w * 0.3, h * 0.5], [w * 0.1, h * 0.5]]
        )
        return [
            Face(box=(-7.6, h * 0.1, w * 0.45, h * 0.6), score=0.95, landmarks=marks),
            Face(box=(w * 0.55, h * 0.3, w + 12.3, h + 5.0), score=0.8, landmarks=None),
        ]


@pytest.fixture
def fake_detector(monkeypatch):
    monkeypatch.setattr(detect_module, "default_detector", lambda **options: _FakeDetector())


def _check_face(face: dict, width: int, height: int) -> None:
    assert set(face) == FACE_KEYS
    box = face["box"]
    assert len(box) == 4 and all(type(v) is int for v in box)
    x1, y1, x2, y2 = box
    assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
    assert face["label"] in LABELS
    assert 0.0 <= face["p_female"] <= 1.0
    assert 0.5 <= face["confidence"] <= 1.0  # 0.5 at the decision threshold, whatever the threshold


def _decision_consistent(face: dict, threshold: float, min_confidence: float) -> None:
    p = face["p_female"]
    female = p >= threshold
    # the predicted label's probability with the log-odds shifted so that the threshold sits at 0.5
    shifted = p * (1 - threshold) / (p * (1 - threshold) + (1 - p) * threshold)
    assert face["confidence"] == pytest.approx(shifted if female else 1 - shifted, abs=2e-6)
    if min_confidence and face["confidence"] < min_confidence:
        assert face["label"] == "uncertain"
    else:
        assert face["label"] == ("female" if female else "male")


def test_predict_jsonl_schema_with_detection(capsys, photo_dir, tiny_face_model, fake_detector):
    code, out, _ = _run(capsys, ["predict", str(photo_dir), "--model", str(tiny_face_model)])
    assert code == 1  # some inputs could not be read
    results = _json_lines(out)
    assert len(results) == len(GOOD) + len(BAD)  # one line per input file, readme.txt is not an input
    names = [Path(r["path"]).name for r in results]
    assert sorted(names) == sorted([*GOOD, *BAD])
    meta = json.loads(tiny_face_model.with_suffix(".json").read_text())
    for result in results:
        assert set(result) == RESULT_KEYS
        name = Path(result["path"]).name
        if name in BAD:
            assert isinstance(result["error"], str) and result["error"]
            assert result["faces"] == []
            continue
        assert result["error"] is None
        width, height = GOOD[name]
        assert len(result["faces"]) == 2
        for face in result["faces"]:
            _check_face(face, width, height)
            _decision_consistent(face, meta["threshold"], meta["min_confidence"])
        assert result["faces"][0]["box"][0] == 0  # clipped at the left edge
        assert result["faces"][1]["box"][2:] == [width, height]  # clipped at the right/bottom edges


def test_predict_with_real_detector_keeps_schema(capsys, photo_dir, tiny_face_model):
    """No faces in flat-colour images: lines still follow the schema (faces may be empty)."""
    code, out, _ = _run(capsys, ["predict", str(photo_dir / "a_dark.jpg"), "--model", str(tiny_face_model)])
    assert code == 0
    (result,) = _json_lines(out)
    assert set(result) == RESULT_KEYS and result["error"] is None
    for face in result["faces"]:
        _check_face(face, 64, 48)


def test_predict_no_detect_box_is_whole_image(capsys, photo_dir, tiny_face_model, monkeypatch):
    def no_detector():
        raise AssertionError("--no-detect must not run the detector")

    monkeypatch.setattr(detect_module, "default_detector", no_detector)
    code, out, _ = _run(capsys, ["predict", str(photo_dir), "--model", str(tiny_face_model), "--no-detect"])
    assert code == 1
    for result in _json_lines(out):
        name = Path(result["path"]).name
        if name in GOOD:
            (face,) = result["faces"]
            assert face["box"] == [0, 0, *GOOD[name]]


def test_predict_missing_file_is_an_error_line(capsys, photo_dir, tiny_face_model):
    missing = photo_dir / "does_not_exist.jpg"
    argv = ["predict", str(photo_dir / "a_dark.jpg"), str(missing), "--model", str(tiny_face_model), "--no-detect"]
    code, out, _ = _run(capsys, argv)
    assert code == 1
    first, second = _json_lines(out)
    assert first["error"] is None and len(first["faces"]) == 1
    assert second["path"] == str(missing) and second["error"] and second["faces"] == []


def test_predict_glob_pattern(capsys, photo_dir, tiny_face_model):
    code, out, _ = _run(capsys, ["predict", str(photo_dir / "*.jpg"), "--model", str(tiny_face_model), "--no-detect"])
    assert code == 1  # the corrupt .jpg is included
    assert sorted(Path(r["path"]).name for r in _json_lines(out)) == ["a_dark.jpg", "d_corrupt.jpg"]


def test_min_confidence_option(capsys, photo_dir, tiny_face_model):
    base = ["predict", str(photo_dir), "--model", str(tiny_face_model), "--no-detect"]
    _, out, _ = _run(capsys, [*base, "--min-confidence", "0"])
    faces = [f for r in _json_lines(out) for f in r["faces"]]
    assert len(faces) == 3
    assert all(f["label"] in {"male", "female"} for f in faces)  # 0 disables abstention
    assert all(f["confidence"] < 0.99 for f in faces)  # the fixture model is never that sure

    _, out, _ = _run(capsys, [*base, "--min-confidence", "0.99"])
    strict = [f for r in _json_lines(out) for f in r["faces"]]
    assert [f["label"] for f in strict] == ["uncertain"] * 3
    assert [f["p_female"] for f in strict] == [f["p_female"] for f in faces]  # only the label changes

    meta = json.loads(tiny_face_model.with_suffix(".json").read_text())
    _, out, _ = _run(capsys, base)  # default: the model's own min_confidence
    for face in (f for r in _json_lines(out) for f in r["faces"]):
        _decision_consistent(face, meta["threshold"], meta["min_confidence"])


def test_predict_csv(capsys, photo_dir, tiny_face_model, fake_detector):
    code, out, _ = _run(capsys, ["predict", str(photo_dir), "--model", str(tiny_face_model), "--format", "csv"])
    assert code == 1
    rows = list(csv.DictReader(io.StringIO(out)))
    assert out.splitlines()[0].split(",") == list(commands.CSV_FIELDS)
    by_name: dict[str, list[dict]] = {}
    for row in rows:
        by_name.setdefault(Path(row["path"]).name, []).append(row)
    assert set(by_name) == {*GOOD, *BAD}
    for name in BAD:
        (row,) = by_name[name]
        assert row["error"] and row["label"] == "" and row["face"] == ""
    for name, (width, height) in GOOD.items():
        assert [r["face"] for r in by_name[name]] == ["0", "1"]
        for row in by_name[name]:
            x1, y1, x2, y2 = (int(row[k]) for k in ("x1", "y1", "x2", "y2"))
            assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
            assert row["label"] in LABELS and 0 <= float(row["p_female"]) <= 1 and row["error"] == ""


def test_predict_csv_matches_jsonl(capsys, photo_dir, tiny_face_model):
    base = ["predict", str(photo_dir / "b_bright.png"), "--model", str(tiny_face_model), "--no-detect"]
    _, out_json, _ = _run(capsys, base)
    _, out_csv, _ = _run(capsys, [*base, "--format", "csv"])
    (face,) = _json_lines(out_json)[0]["faces"]
    (row,) = csv.DictReader(io.StringIO(out_csv))
    assert float(row["p_female"]) == face["p_female"] and row["label"] == face["label"]
    assert [int(row[k]) for k in ("x1", "y1", "x2", "y2")] == face["box"]


def test_predict_annotate(capsys, photo_dir, tiny_face_model, fake_detector, tmp_path):
    annotated = tmp_path / "annotated"
    code, out, _ = _run(
        capsys, ["predict", str(photo_dir), "--model", str(tiny_face_model), "--annotate", str(annotated)]
    )
    assert code == 1
    assert len(_json_lines(out)) == 5
    written = sorted(p.name for p in annotated.glob("*.png"))
    assert written == sorted(f"{Path(n).stem}.annotated.png" for n in GOOD)
    assert sorted(p.name for p in annotated.iterdir()) == sorted([*written, "annotated.csv"])
    for name, (width, height) in GOOD.items():
        drawn = np.asarray(Image.open(annotated / f"{Path(name).stem}.annotated.png").convert("RGB"))
        assert drawn.shape == (height, width, 3)
        original = next(photo_dir.rglob(name))
        assert not np.array_equal(drawn, np.asarray(Image.open(original).convert("RGB")))  # boxes drawn


def test_predict_fuse_fingerprints(capsys, tmp_path, tiny_fingerprint_model, write_image):
    rng = np.random.default_rng(4)
    prints = []
    for i, finger in enumerate(("index", "thumb", "ring")):
        gray = rng.integers(0, 256, (103, 96), dtype=np.uint8) // (i + 1)
        prints.append(write_image(tmp_path / f"12__M_Left_{finger}_finger.png", np.dstack([gray] * 3)))
    bad = tmp_path / "12__M_Left_little_finger.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    argv = ["predict", "--fuse", "--model", str(tiny_fingerprint_model), *map(str, prints), str(bad)]
    code, out, _ = _run(capsys, argv)
    assert code == 1  # one print was unreadable; the fused line is still printed
    lines = _json_lines(out)
    assert len(lines) == 5
    *per_image, fused = lines
    assert all(set(r) == RESULT_KEYS for r in per_image)
    assert set(fused) == FUSED_KEYS
    assert fused["n"] == 3
    assert fused["paths"] == [str(p) for p in prints]
    meta = json.loads(tiny_fingerprint_model.with_suffix(".json").read_text())
    # fusion = mean of the logits, then temperature: recover each image's logit from its p_female
    temperature = meta["temperature"]
    logits = [temperature * math.log(p / (1 - p)) for p in (r["faces"][0]["p_female"] for r in per_image[:3])]
    expected = 1 / (1 + math.exp(-np.mean(logits) / temperature))
    assert fused["p_female"] == pytest.approx(expected, abs=1e-5)
    _decision_consistent(fused, meta["threshold"], meta["min_confidence"])
    for result in per_image[:3]:
        (face,) = result["faces"]
        assert face["box"] == [0, 0, 96, 103]
        _decision_consistent(face, meta["threshold"], meta["min_confidence"])


def test_fused_line_honours_min_confidence(capsys, tmp_path, tiny_fingerprint_model, write_image):
    """--min-confidence applies to the person's line as to each print's: 1 makes it uncertain, 0 never."""
    rng = np.random.default_rng(9)
    prints = [
        write_image(tmp_path / f"4__M_Left_{finger}_finger.png", np.dstack([rng.integers(0, 256, (103, 96), np.uint8)] * 3))
        for finger in ("index", "middle")
    ]  # fmt: skip
    labels, fused = {}, {}
    for value in ("0", "1"):
        argv = ["predict", "--fuse", "--min-confidence", value, "--model", str(tiny_fingerprint_model), *map(str, prints)]  # fmt: skip
        code, out, _ = _run(capsys, argv)
        assert code == 0
        *per_image, fused[value] = _json_lines(out)
        labels[value] = {r["faces"][0]["label"] for r in per_image}
    assert labels["1"] == {"uncertain"} and "uncertain" not in labels["0"]
    assert fused["1"]["label"] == "uncertain" and fused["0"]["label"] in ("male", "female")
    assert fused["0"]["p_female"] == fused["1"]["p_female"]


def test_fuse_runs_the_network_once_per_print(
    capsys, caplog, monkeypatch, tmp_path, tiny_fingerprint_model, write_image
):
    """The person line reuses the per-file logits; a file given twice gets two lines but is fused once."""
    from genderclass.inference.classifier import GenderClassifier

    scored: list[int] = []
    original = GenderClassifier.logits

    def counting(self, crops, batch_size=64):
        scored.append(len(crops))
        return original(self, crops, batch_size)

    monkeypatch.setattr(GenderClassifier, "logits", counting)
    rng = np.random.default_rng(6)
    prints = [
        write_image(tmp_path / f"7__F_Right_{finger}_finger.png", np.dstack([rng.integers(0, 256, (103, 96), np.uint8)] * 3))
        for finger in ("index", "middle")
    ]  # fmt: skip
    copy = tmp_path / "copy-of-index.png"  # the same print under another name is the same print
    copy.write_bytes(prints[0].read_bytes())
    argv = ["predict", "--fuse", "--model", str(tiny_fingerprint_model), *map(str, prints), str(prints[0]), str(copy)]
    code, out, _ = _run(capsys, argv)
    assert code == 0
    *per_image, fused = _json_lines(out)
    assert len(per_image) == 4 and sum(scored) == 4  # four lines, and no second pass for the fused line
    assert fused["n"] == 2 and fused["paths"] == [str(p) for p in prints]
    assert f"{copy} repeats {prints[0]} (identical content)" in caplog.text
    alone = GenderClassifier.load(tiny_fingerprint_model).predict_person(prints)
    assert fused["p_female"] == pytest.approx(alone["p_female"], abs=1e-6)  # the Python API agrees


def test_fuse_needs_a_fingerprint_model(capsys, photo_dir, tiny_face_model):
    code, out, _ = _run(capsys, ["predict", "--fuse", "--model", str(tiny_face_model), str(photo_dir / "a_dark.jpg")])
    assert code == 2
    assert out == ""


def test_predict_modality_must_match_the_given_model(capsys, caplog, photo_dir, tiny_face_model):
    argv = ["predict", "--modality", "fingerprint", "--model", str(tiny_face_model), str(photo_dir / "a_dark.jpg")]
    code, out, _ = _run(capsys, argv)
    assert code == 2 and out == "" and "is a face model" in caplog.text


def test_predict_person_needs_a_fingerprint_model(photo_dir, tiny_face_model):
    from genderclass.inference.classifier import GenderClassifier

    with pytest.raises(ValueError, match="fuses fingerprints"):
        GenderClassifier.load(tiny_face_model).predict_person([photo_dir / "a_dark.jpg"])


def test_python_api_refuses_what_the_cli_refuses(photo_dir, tiny_face_model, tiny_fingerprint_model):
    from genderclass.inference.classifier import GenderClassifier

    clf = GenderClassifier.load(tiny_face_model)
    photo = photo_dir / "a_dark.jpg"
    for bad in (2, -0.1, float("nan")):
        with pytest.raises(ValueError, match="min_confidence must be from 0 to 1"):
            clf.predict(photo, min_confidence=bad)
    with pytest.raises(TypeError, match="a list"):
        clf.predict_batch(str(photo))  # not its characters, one by one
    stacked = np.zeros((2, 40, 40, 3), np.uint8)  # an N x H x W x C array is a batch
    assert len(clf.predict_batch(stacked, detect=False)) == 2
    assert clf.predict(photo, min_confidence=1.0)["error"] is None
    with pytest.raises(ValueError, match="min_confidence"):
        GenderClassifier.load(tiny_fingerprint_model).fuse([0.5], ["a"], min_confidence=3)


def test_python_api_names_the_image_types_it_takes(photo_dir, tiny_face_model, tiny_fingerprint_model):
    """None, a file object or a number is the caller's mistake: a TypeError that says what an image
    is, raised in a batch before any image is decoded (a bad image file stays an error entry)."""
    import io

    from genderclass.inference.classifier import GenderClassifier

    clf = GenderClassifier.load(tiny_face_model)
    photo = photo_dir / "a_dark.jpg"
    for wrong in (None, io.BytesIO(photo.read_bytes()), memoryview(photo.read_bytes()), 3):
        with pytest.raises(TypeError, match="an image is a path, encoded bytes, a PIL image or a NumPy array"):
            clf.predict(wrong)
    decoded = []
    clf.crops = lambda image, detect=None: decoded.append(image)  # never reached
    with pytest.raises(TypeError, match="not NoneType"):
        clf.predict_batch([photo, None])
    with pytest.raises(TypeError, match="not NoneType"):
        GenderClassifier.load(tiny_fingerprint_model).predict_person([photo, None])
    assert decoded == []


def test_python_api_takes_any_path_like_object(photo_dir, tiny_face_model):
    """A path is any os.PathLike (a PurePath, a py.path), as it was before the image types were
    checked: only what is no image source is a TypeError."""
    from pathlib import PurePath

    from genderclass.inference.classifier import GenderClassifier

    class PathLike:
        def __init__(self, path):
            self.path = path

        def __fspath__(self):
            return str(self.path)

    clf = GenderClassifier.load(tiny_face_model)
    photo = photo_dir / "a_dark.jpg"
    expected = clf.predict(photo)
    for given in (PurePath(photo), PathLike(photo)):
        assert clf.predict(given) == expected  # the result names the path, as for a Path
        assert clf.predict_batch([given]) == [expected]
    with pytest.raises(TypeError, match="takes a list"):
        clf.predict_batch(PurePath(photo))  # one path alone, as a str or Path is


def test_classifier_threads_are_checked(tiny_face_model):
    from genderclass.inference.classifier import GenderClassifier

    # 2.5 and "2" were reported as "not a usable ONNX model"; -1 and True reached ONNX Runtime
    for wrong in (2.5, "2", -1, True):
        with pytest.raises(ValueError, match="threads must be a whole number"):
            GenderClassifier.load(tiny_face_model, threads=wrong)
    assert GenderClassifier.load(tiny_face_model, threads=np.int64(1)).session is not None


def test_classifier_repr_names_its_model(tiny_face_model):
    from genderclass.inference.classifier import GenderClassifier

    clf = GenderClassifier.load(tiny_face_model)
    assert (
        repr(clf) == f"GenderClassifier(path={str(tiny_face_model)!r}, modality='face', name={clf.metadata['name']!r})"
    )


def test_distinct_files_compares_content_not_names(tmp_path):
    from genderclass.inference.classifier import distinct_files

    a, b, c = (tmp_path / n for n in ("a.png", "b.png", "c.png"))
    a.write_bytes(b"one")
    b.write_bytes(b"one")
    c.write_bytes(b"two")
    missing = tmp_path / "missing.png"
    assert distinct_files([a, b, c, a, missing, missing]) == [0, 2, 4]
    assert distinct_files([b"x", bytearray(b"x"), b"y"]) == [0, 2]
    pixels = np.zeros((4, 4, 3), np.uint8)
    assert distinct_files([pixels, pixels.copy(), pixels[:2]]) == [0, 2]
    red, blue = Image.new("P", (4, 4)), Image.new("P", (4, 4))  # the same indices, other colours
    red.putpalette([255, 0, 0] * 256)
    blue.putpalette([0, 0, 255] * 256)
    assert distinct_files([red, blue, red.copy()]) == [0, 1]


def test_fuse_needs_jsonl(capsys, tmp_path, tiny_fingerprint_model, write_image):
    """The fused person line is JSON: mixing it into CSV rows is refused before any output."""
    gray = np.random.default_rng(5).integers(0, 256, (103, 96), dtype=np.uint8)
    image = write_image(tmp_path / "3__F_Left_index_finger.png", np.dstack([gray] * 3))
    argv = ["predict", "--fuse", "--format", "csv", "--model", str(tiny_fingerprint_model), str(image)]
    code, out, _ = _run(capsys, argv)
    assert code == 2 and out == ""


def test_predict_usage_errors(capsys, tmp_path, tiny_face_model):
    code, out, _ = _run(capsys, ["predict", str(tmp_path / "x.jpg"), "--model", str(tmp_path / "missing.onnx")])
    assert code == 2 and out == ""
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, _ = _run(capsys, ["predict", str(empty), "--model", str(tiny_face_model)])
    assert code == 2 and out == ""  # a folder without images is a usage error, not silent success
    # beside other inputs, it is an error line of its own (exit 1), not silently dropped
    photo = tmp_path / "one.png"
    Image.new("RGB", (40, 40), (120, 90, 80)).save(photo)
    code, out, _ = _run(capsys, ["predict", str(empty), str(photo), "--no-detect", "--model", str(tiny_face_model)])
    lines = _json_lines(out)
    assert code == 1 and [line["path"] for line in lines] == [str(empty), str(photo)]
    assert "folder without image files" in lines[0]["error"] and lines[1]["error"] is None


def test_model_path_forms(capsys, photo_dir, tiny_face_model):
    """A model is named by its .onnx, its .json or the folder holding it."""
    outputs = []
    for model in (tiny_face_model, tiny_face_model.with_suffix(".json"), tiny_face_model.parent):
        code, out, _ = _run(capsys, ["predict", str(photo_dir / "a_dark.jpg"), "--model", str(model), "--no-detect"])
        assert code == 0
        outputs.append(_json_lines(out))
    assert outputs[0] == outputs[1] == outputs[2]


def test_info_custom_model(capsys, tiny_face_model):
    code, out, _ = _run(capsys, ["info", "--model", str(tiny_face_model)])
    assert code == 0
    assert out.splitlines()[0] == f"[custom] {tiny_face_model}"
    assert "  modality: face" in out.splitlines()
    assert "  input_size: 32" in out.splitlines()
    assert "  temperature: 1.5" in out.splitlines()
    code, out, _ = _run(capsys, ["info", "--json", "--model", str(tiny_face_model)])
    assert code == 0
    assert json.loads(out) == {"custom": json.loads(tiny_face_model.with_suffix(".json").read_text())}


def _subcommands() -> list[str]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return sorted(action.choices)


def test_expected_subcommands_exist():
    assert {"train", "export", "predict", "evaluate", "bench", "info"} <= set(_subcommands())


@pytest.mark.parametrize("command", _subcommands())
def test_subcommand_help(capsys, command):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "examples" in out
    assert f"genderclass {command}" in out


def test_top_level_help_and_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "predict" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("genderclass ")


def test_train_flags_override_config():
    parser = build_parser()
    args = parser.parse_args(
        ["train", "--modality", "fingerprint", "--data", "d.csv", "--format", "csv", "--out", "r",
         "--epochs", "3", "--input-size", "48", "--batch-size", "8"]
    )  # fmt: skip
    cfg = commands.resolve_train_config(args)
    assert (cfg.modality, cfg.format, cfg.epochs, cfg.batch_size) == ("fingerprint", "csv", 3, 8)
    assert cfg.preprocess.input_size == 48 and cfg.preprocess.channels == 1
    assert cfg.balance == "class"  # imbalanced fingerprints default to class-balanced sampling
    face = commands.resolve_train_config(parser.parse_args(["train", "--data", "d", "--out", "r", "--margin", "0.2"]))
    assert (face.modality, face.format, face.preprocess.margin, face.balance) == ("face", "utkface", 0.2, "none")


def test_train_defaults_are_the_bundled_recipes():
    """Omitted flags mean the first stage of each bundled model's recipe (see the README)."""
    parser = build_parser()
    face = commands.resolve_train_config(parser.parse_args(["train", "--data", "d", "--out", "r"]))
    assert (face.arch, face.width, face.epochs, face.patience, face.preprocess.input_size) == (
        "small_resnet",
        0.75,
        30,
        8,
        96,
    )
    fp = commands.resolve_train_config(parser.parse_args(["train", "--modality", "fingerprint", "--out", "r"]))
    assert (fp.format, fp.arch, fp.width, fp.epochs, fp.patience, fp.balance) == (
        "socofing",
        "small_resnet",
        0.5,
        30,
        12,
        "class",
    )
    assert fp.near_duplicate_distance == 0 and fp.preprocess.channels == 1
    assert (fp.aux_task, fp.monitor, face.aux_task, face.monitor) == ("finger", "val_auc", "age", "val_bal_acc")
    wide = commands.resolve_train_config(parser.parse_args(["train", "--modality", "fingerprint", "--out", "r",
                                                            "--width", "1.0", "--balance", "none"]))  # fmt: skip
    assert (wide.width, wide.balance) == (1.0, "none")
    help_text = parser._subparsers._group_actions[0].choices["train"].format_help()
    assert "faces: 0.75; fingerprints: 0.5" in " ".join(help_text.split())
    assert "faces only: crop margin (fraction of the box) (default: 0.05)" in " ".join(help_text.split())
    for default in ("column; data without it trains without the head (default: faces: age; fingerprints: finger)",
                    "early stopping (default: faces: val_bal_acc; fingerprints: val_auc)",
                    "(faces: race; prints: finger) (default: faces: none; fingerprints: class)",
                    "next to the gender loss (default: 0.5)"):  # fmt: skip
        assert default in " ".join(help_text.split())
    off = commands.resolve_train_config(
        parser.parse_args(["train", "--modality", "fingerprint", "--out", "r", "--aux-task", "none"])
    )
    assert off.aux_task == ""
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--out", "r", "--aux-weight", "-1"])


def test_split_seed_defaults_to_seed():
    """--split-seed fixes the split while --seed varies; omitted (and in old run configs) it follows --seed."""
    parser = build_parser()
    cfg = commands.resolve_train_config(parser.parse_args(["train", "--out", "r", "--seed", "4"]))
    assert (cfg.seed, cfg.split_seed, cfg.resolved_split_seed) == (4, -1, 4)
    cfg = commands.resolve_train_config(parser.parse_args(["train", "--out", "r", "--seed", "4", "--split-seed", "0"]))
    assert (cfg.seed, cfg.resolved_split_seed) == (4, 0)
    old_run = {k: v for k, v in cfg.to_dict().items() if k != "split_seed"}
    assert TrainConfig.from_dict(old_run).resolved_split_seed == 4


def test_annotate_does_not_overwrite_same_named_files(
    capsys, tmp_path, tiny_face_model, make_colour_image, write_image
):
    """Two inputs with the same stem (x.jpg, x.png, or x.jpg in two folders) need two annotated copies."""
    folder = tmp_path / "in"
    write_image(folder / "x.jpg", make_colour_image(40, 30, (200, 50, 50)), quality=90)
    write_image(folder / "x.png", make_colour_image(30, 40, (50, 200, 50)))
    write_image(folder / "other" / "x.jpg", make_colour_image(50, 20, (50, 50, 200)), quality=90)
    annotated = tmp_path / "annotated"
    argv = ["predict", str(folder), "--model", str(tiny_face_model), "--no-detect", "--annotate", str(annotated)]
    code, out, _ = _run(capsys, argv)
    assert code == 0 and len(_json_lines(out)) == 3
    written = sorted(annotated.rglob("*.png"))
    assert len(written) == 3, [p.name for p in written]
    shapes = sorted(np.asarray(Image.open(p)).shape[:2] for p in written)
    assert shapes == sorted([(30, 40), (40, 30), (20, 50)])
    with open(annotated / "annotated.csv", newline="") as f:  # which input each numbered copy shows
        index = {row["path"]: row["annotated"] for row in csv.DictReader(f)}
    assert set(index) == {r["path"] for r in _json_lines(out)}
    for source, copy in index.items():
        shown = np.asarray(Image.open(annotated / copy).convert("RGB"))
        assert shown.shape == np.asarray(Image.open(source).convert("RGB")).shape


def test_cross_validation_flags(capsys, caplog):
    """--folds/--fold reach the config (old run configs have neither) and are checked before any work."""
    parser = build_parser()
    cfg = commands.resolve_train_config(parser.parse_args(["train", "--out", "r", "--folds", "5", "--fold", "3"]))
    assert (cfg.folds, cfg.fold) == (5, 3)
    old_run = {k: v for k, v in cfg.to_dict().items() if k not in ("folds", "fold")}
    assert (TrainConfig.from_dict(old_run).folds, TrainConfig.from_dict(old_run).fold) == (0, 0)
    code, out, err = _run(capsys, ["train", "--data", "nowhere", "--out", "r", "--folds", "5", "--fold", "5"])
    assert code == 2 and out == "" and "fold must be in 0..4" in caplog.text


@pytest.mark.parametrize("value", ["5", "-1", "nan", "x"])
def test_min_confidence_must_be_a_probability(capsys, photo_dir, tiny_face_model, value):
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", str(photo_dir / "a_dark.jpg"), "--model", str(tiny_face_model), "--min-confidence", value])
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and "--min-confidence" in err


def test_bad_models_and_annotate_target_are_usage_errors(capsys, caplog, photo_dir, tiny_face_model, tmp_path):
    image = str(photo_dir / "a_dark.jpg")
    target = tmp_path / "a-file"
    target.write_text("")
    code, out, _ = _run(capsys, ["predict", image, "--model", str(tiny_face_model), "--annotate", str(target)])
    assert (code, out) == (2, "") and "--annotate needs a folder" in caplog.text
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "m.onnx").write_bytes(b"not a model")
    (broken / "m.json").write_text(tiny_face_model.with_suffix(".json").read_text())
    code, out, _ = _run(capsys, ["predict", image, "--model", str(broken / "m.onnx")])
    assert (code, out) == (2, "") and f"{broken / 'm.onnx'} is not a usable ONNX model" in caplog.text
    (broken / "m.json").write_text("{not json")
    code, out, _ = _run(capsys, ["predict", image, "--model", str(broken / "m.onnx")])
    assert (code, out) == (2, "") and f"model metadata {broken / 'm.json'} is not valid JSON" in caplog.text


def test_a_missing_file_with_glob_characters_is_an_error_line(capsys, photo_dir, tiny_face_model):
    missing = str(photo_dir / "photo[1].jpg")
    argv = ["predict", str(photo_dir / "a_dark.jpg"), missing, "--model", str(tiny_face_model), "--no-detect"]
    code, out, _ = _run(capsys, argv)
    assert code == 1
    assert [(r["path"], r["error"] is None) for r in _json_lines(out)][1] == (missing, False)
    assert _json_lines(out)[1]["error"] == f"no file matches {missing}"  # it may be a pattern too
    plain = str(photo_dir / "gone.jpg")
    code, out, _ = _run(capsys, ["predict", plain, "--model", str(tiny_face_model)])
    assert code == 1 and _json_lines(out)[0]["error"] == f"no such file: {plain}"


def test_fuse_counts_a_print_given_twice_once(capsys, tmp_path, tiny_fingerprint_model, write_image):
    gray = np.random.default_rng(6).integers(0, 256, (103, 96), dtype=np.uint8)
    image = write_image(tmp_path / "prints" / "3__F_Left_index_finger.png", np.dstack([gray] * 3))
    argv = ["predict", "--fuse", "--model", str(tiny_fingerprint_model), str(tmp_path / "prints"), str(image)]
    code, out, _ = _run(capsys, argv)
    lines = _json_lines(out)
    assert code == 0 and len(lines) == 3  # one line per input given, then the person
    assert lines[-1]["n"] == 1 and lines[-1]["paths"] == [str(image)]


def test_logging_levels(monkeypatch):
    import logging
    import warnings

    from tqdm import tqdm

    from genderclass.cli.main import setup_logging

    own, root = logging.getLogger("genderclass"), logging.getLogger()
    monkeypatch.setattr(own, "level", own.level)  # all restored after the test
    monkeypatch.setattr(root, "level", root.level)
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(tqdm, "__init__", tqdm.__init__)  # -q switches progress bars off
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # and routes warnings to logging
    cases = {(0, False): (logging.INFO, logging.WARNING), (1, False): (logging.DEBUG, logging.WARNING),
             (2, False): (logging.DEBUG, logging.DEBUG), (0, True): (logging.ERROR, logging.ERROR)}  # fmt: skip
    for (verbose, quiet), expected in cases.items():
        root.handlers = []  # basicConfig sets the level only while the root logger has no handler
        setup_logging(verbose, quiet)
        assert (own.level, root.level) == expected, (verbose, quiet)
    assert tqdm([], disable=False).disable  # after -q: even a caller's explicit disable=False is overruled


def test_stdout_closed_early_exits_quietly(photo_dir, tiny_face_model):
    import subprocess
    import sys

    image = str(photo_dir / "a_dark.jpg")  # given 3,000 times: far more output than a pipe buffers
    argv = [sys.executable, "-m", "genderclass.cli.main", "-q", "predict", *[image] * 3000,
            "--model", str(tiny_face_model), "--no-detect"]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert json.loads(process.stdout.readline())["error"] is None
    process.stdout.close()  # like '| head -1'
    _, err = process.communicate(timeout=300)
    assert process.returncode == 141 and b"Traceback" not in err, err.decode()


def test_a_file_name_that_is_not_utf8_is_printed_as_its_bytes(tmp_path, photo_dir, tiny_face_model):
    """CSV and JSON lines on stdout: such a name once ended the CSV output after its header."""
    import os
    import shutil
    import subprocess
    import sys

    odd = os.path.join(os.fsencode(tmp_path), b"caf\xe9.jpg")
    shutil.copy(photo_dir / "a_dark.jpg", odd)
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "LC_ALL": "C.UTF-8"}
    for fmt in ("csv", "jsonl"):
        argv = [sys.executable, "-m", "genderclass.cli.main", "-q", "predict", "--format", fmt,
                "--model", str(tiny_face_model), "--no-detect", str(photo_dir / "a_dark.jpg"), os.fsdecode(odd)]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        lines = done.stdout.splitlines()
        assert len(lines) == (3 if fmt == "csv" else 2)
        assert b"caf\xe9.jpg" in lines[-1] or b"caf\\udce9.jpg" in lines[-1]


def _nan_model(source: Path, folder: Path) -> Path:
    """A copy of ``source`` whose every logit is multiplied by NaN (a broken model file)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    model = onnx.load(str(source))
    output = model.graph.output[0].name
    for node in model.graph.node:
        node.output[:] = [f"{name}_raw" if name == output else name for name in node.output]
    model.graph.initializer.append(helper.make_tensor("nan", TensorProto.FLOAT, [], [math.nan]))
    model.graph.node.append(helper.make_node("Mul", [f"{output}_raw", "nan"], [output]))
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / source.name
    onnx.save(model, str(target))
    target.with_suffix(".json").write_text(source.with_suffix(".json").read_text())
    return target


def test_a_model_returning_nan_gives_error_lines_never_nan(
    capsys, caplog, tmp_path, tiny_fingerprint_model, write_image
):
    from genderclass.inference.classifier import GenderClassifier

    model = _nan_model(tiny_fingerprint_model, tmp_path / "nan-model")
    gray = np.random.default_rng(7).integers(0, 256, (103, 96), dtype=np.uint8)
    image = write_image(tmp_path / "prints" / "4__M_Left_thumb_finger.png", np.dstack([gray] * 3))
    code, out, _ = _run(capsys, ["predict", "--fuse", "--model", str(model), str(image)])
    strict = [json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} on stdout")) for line in out.splitlines()]
    assert code == 1 and len(strict) == 1  # the file's error line; no person line from nothing
    assert strict[0]["faces"] == [] and "not a finite number" in strict[0]["error"]
    assert "nothing to fuse" in caplog.text
    with pytest.raises(ValueError, match="not a finite number"):
        GenderClassifier.load(model).predict_person([str(image)])
    for label in ("male", "female"):
        write_image(tmp_path / "data" / label / "x.png", np.dstack([gray] * 3))
    argv = ["evaluate", "--model", str(model), "--data", str(tmp_path / "data"), "--format", "folder"]
    code, out, _ = _run(capsys, [*argv, "--out", str(tmp_path / "eval")])
    assert (code, out) == (2, "") and "may be broken (2 of 2 images)" in caplog.text


def test_an_image_with_one_failed_face_keeps_no_faces(tiny_face_model, monkeypatch):
    """All or nothing per image: a non-finite score for any face (NaN or infinity) is the image's error."""
    from genderclass.inference.classifier import GenderClassifier
    from genderclass.preprocess import Crop

    clf = GenderClassifier.load(tiny_face_model)
    crops = {"two-faces": 2, "one-face": 1, "infinite": 1}
    monkeypatch.setattr(
        clf,
        "crops",
        lambda image, detect=None: (None, [Crop(np.zeros((32, 32, 3), np.uint8), [0, 0, 1, 1], None)] * crops[image]),
    )
    monkeypatch.setattr(clf, "logits", lambda pixels, batch_size=64: np.array([1.0, np.nan, -2.0, np.inf], np.float32))
    two, one, infinite = clf.predict_batch(list(crops))
    assert (two["faces"], infinite["faces"]) == ([], []) and "not a finite number" in two["error"] + infinite["error"]
    assert one["error"] is None and one["faces"][0]["label"] == "male"
    monkeypatch.setattr(clf, "logits", lambda pixels, batch_size=64: np.array([np.inf, -np.inf], np.float32))
    monkeypatch.setattr(clf, "modality", "fingerprint")  # predict_person fuses fingerprints only
    with pytest.raises(ValueError, match="not a finite number"):
        clf.predict_person(["one-face", "infinite"])


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="needs a file system that stores any bytes")
def test_annotate_writes_any_file_name(tmp_path, make_colour_image, write_image):
    """A file name that is not valid UTF-8 (it arrives as a str with surrogates) is annotated, not
    a crash of the image writer; the written file is a PNG of the input's size."""
    from genderclass.inference.annotate import write_annotated

    folder = tmp_path / "in"
    folder.mkdir()
    source = write_image(tmp_path / "plain.png", make_colour_image(30, 20, (90, 120, 150), seed=4))
    odd = os.fsdecode(bytes(folder) + b"/caf\xe9.png")
    Path(odd).write_bytes(source.read_bytes())
    face = {"box": [2, 2, 20, 15], "label": "female", "p_female": 0.9, "confidence": 0.8}
    target = write_annotated(odd, {"faces": [face]}, tmp_path / "out")
    assert target.exists() and np.asarray(Image.open(target)).shape[:2] == (20, 30)


def test_file_system_errors_are_one_line_usage_errors(capsys, caplog, tmp_path):
    """A path that is a file where a folder is needed: exit 2 with one message, no traceback."""
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    code, out, err = _run(capsys, ["card", "--modality", "face", "--out", str(blocker / "card.md")])
    assert code == 2 and out == "" and "Traceback" not in err
    assert any(r.levelname == "ERROR" and str(blocker) in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "flags",
    [["--epochs", "0"], ["--batch-size", "0"], ["--input-size", "0"], ["--val-fraction", "2"], ["--lr", "-1"],
     ["--outside-fill", "1.5"], ["--hair-erase", "-0.1"], ["--width", "0"], ["--margin", "-0.1"], ["--margin", "nan"],
     ["--yaw-warp", "61"], ["--yaw-warp", "-5"]],
)  # fmt: skip
def test_train_refuses_impossible_numbers(capsys, tmp_path, flags):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), *flags])
    assert exit_info.value.code == 2
    assert flags[0] in capsys.readouterr().err


def test_bench_refuses_an_image_it_cannot_read(capsys, caplog, tmp_path, tiny_face_model):
    text = tmp_path / "not_an_image.jpg"
    text.write_text("hello")
    argv = ["bench", "--model", str(tiny_face_model), "--image", str(text), "--repeat", "2", "--no-cold-start"]
    code, out, _ = _run(capsys, argv)
    assert code == 2 and out == ""
    assert any("cannot time" in r.getMessage() for r in caplog.records)


def test_bench_cold_start_runs_this_installation(monkeypatch, tmp_path, tiny_face_model):
    """Not whichever `genderclass` comes first on PATH, and a failed run is an error, not a time."""
    import subprocess

    from genderclass.inference import bench

    image = tmp_path / "x.png"
    Image.new("RGB", (32, 32)).save(image)
    stray = tmp_path / "bin" / "genderclass"  # another installation's command, first on PATH
    stray.parent.mkdir()
    stray.write_text("#!/bin/sh\nexit 0\n")
    stray.chmod(0o755)
    monkeypatch.setenv("PATH", str(stray.parent))
    seen = []

    def fake_run(command, **kwargs):
        seen.append(command)
        return subprocess.CompletedProcess(command, 0 if len(seen) < 3 else 2, "", "boom")

    monkeypatch.setattr(bench.subprocess, "run", fake_run)
    with pytest.raises(ValueError, match="cold-start run failed"):
        bench.cold_start_seconds(str(tiny_face_model), "face", image)
    assert seen[0][0] != str(stray) and seen[0][0] in (
        str(Path(sys.executable).with_name("genderclass")),
        sys.executable,
    )
    # a given model is timed as it is: no --modality beside it (predict would refuse a mismatch)
    assert "--model" in seen[0] and "--modality" not in seen[0]
    seen.clear()
    with pytest.raises(ValueError):
        bench.cold_start_seconds(None, "fingerprint", image)
    assert seen[0][-2:] == ["--modality", "fingerprint"]


def test_bench_a_given_fingerprint_model(capsys, tiny_fingerprint_model):
    argv = ["bench", "--model", str(tiny_fingerprint_model), "--repeat", "2"]
    code, out, _ = _run(capsys, argv)
    assert code == 0 and json.loads(out)["cold_start_predict_s"] > 0


def test_metadata_that_is_not_an_object_is_a_clear_error_for_every_reader(capsys, caplog, tmp_path, tiny_face_model):
    from genderclass.inference.classifier import GenderClassifier

    model = tmp_path / "face.onnx"
    model.write_bytes(Path(tiny_face_model).with_suffix(".onnx").read_bytes())
    model.with_suffix(".json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="is not a JSON object"):
        GenderClassifier.load(model)
    code, out, _ = _run(capsys, ["card", "--model", str(model), "--out", str(tmp_path / "card.md")])
    assert code == 2 and out == "" and "is not a JSON object" in caplog.text


def test_metadata_without_preprocessing_is_a_clear_error(tmp_path, tiny_face_model):
    from genderclass.inference.classifier import GenderClassifier

    model = tmp_path / "face.onnx"
    model.write_bytes(Path(tiny_face_model).with_suffix(".onnx").read_bytes())
    model.with_suffix(".json").write_text("{}")
    with pytest.raises(ValueError, match="not a genderclass model's metadata"):
        GenderClassifier.load(model)


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_quiet_predict_draws_no_progress_bar_on_a_terminal(photo_dir, tiny_face_model):
    """With stderr on a terminal, predict over several files draws a bar; with -q it draws none."""
    import fcntl
    import pty
    import select
    import struct
    import subprocess
    import termios

    def stderr_on_a_terminal(*flags: str) -> str:
        leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 0 columns draws nothing
        argv = [sys.executable, "-m", "genderclass.cli.main", *flags, "predict", str(photo_dir),
                "--model", str(tiny_face_model), "--no-detect", "--batch-size", "1"]  # fmt: skip
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=follower, timeout=300, check=False)
        os.close(follower)
        chunks = []
        while select.select([leader], [], [], 0.5)[0]:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(leader)
        assert done.returncode == 1  # the photo folder holds two broken files
        return b"".join(chunks).decode(errors="replace")

    assert "predict:" in stderr_on_a_terminal()
    quiet = stderr_on_a_terminal("-q")
    assert "predict:" not in quiet and "%" not in quiet


def test_evaluate_refuses_data_of_the_other_modality(capsys, caplog, tmp_path, tiny_fingerprint_model):
    code, out, _ = _run(capsys, ["evaluate", "--model", str(tiny_fingerprint_model), "--data", str(tmp_path),
                                 "--format", "utkface", "--out", str(tmp_path / "ev")])  # fmt: skip
    assert code == 2 and out == ""
    assert any("utkface holds face images" in r.getMessage() for r in caplog.records)


def test_evaluate_exits_1_when_files_were_unreadable(capsys, tmp_path, tiny_fingerprint_model, write_image):
    rng = np.random.default_rng(3)
    for label in ("male", "female"):
        for i in range(2):
            write_image(
                tmp_path / "data" / label / f"{i}.png", np.dstack([rng.integers(0, 256, (103, 96), np.uint8)] * 3)
            )
    argv = ["evaluate", "--model", str(tiny_fingerprint_model), "--data", str(tmp_path / "data"), "--format", "folder"]
    code, out, _ = _run(capsys, [*argv, "--out", str(tmp_path / "ev1")])
    assert code == 0 and json.loads(out)["n_unreadable"] == 0
    (tmp_path / "data" / "male" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    code, out, _ = _run(capsys, [*argv, "--out", str(tmp_path / "ev2")])
    summary = json.loads(out)
    assert code == 1 and summary["n_unreadable"] == 1 and summary["n"] == 4  # reported, skipped, the rest scored


def test_evaluate_with_nothing_to_score_says_why_and_leaves_no_folder(capsys, caplog, tmp_path, tiny_fingerprint_model):
    for label in ("male", "female"):
        (tmp_path / "data" / label).mkdir(parents=True)
        (tmp_path / "data" / label / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    argv = ["evaluate", "--model", str(tiny_fingerprint_model), "--data", str(tmp_path / "data"), "--format", "folder"]
    code, out, _ = _run(capsys, [*argv, "--out", str(tmp_path / "ev")])
    assert (code, out) == (2, "") and "no sample could be evaluated: all 2 unreadable" in caplog.text
    assert not (tmp_path / "ev").exists()
    (tmp_path / "afile").write_text("x")
    code, out, _ = _run(capsys, [*argv, "--out", str(tmp_path / "afile")])
    assert (code, out) == (2, "") and "is a file: give a folder for the report" in caplog.text


def test_evaluate_refuses_mixed_labels_of_one_subject_before_scoring(
    capsys, caplog, monkeypatch, tmp_path, tiny_fingerprint_model
):
    from genderclass.inference.classifier import GenderClassifier

    rng = np.random.default_rng(5)
    rows = ["path,label,subject"]
    for i, (label, subject) in enumerate([("male", "7"), ("female", "7"), ("female", "8")]):
        path = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (103, 96, 3), np.uint8)).save(path)
        rows.append(f"{path},{label},{subject}")
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n")
    monkeypatch.setattr(GenderClassifier, "logits", lambda *a, **k: pytest.fail("scored before the check"))
    argv = ["evaluate", "--model", str(tiny_fingerprint_model), "--data", str(tmp_path / "data.csv"), "--format", "csv"]
    code, out, _ = _run(capsys, [*argv, "--out", str(tmp_path / "ev")])
    assert code == 2 and out == "" and "inconsistent labels (checked before scoring): ['7']" in caplog.text


def test_card_out_ending_in_a_slash_is_a_folder(capsys, tmp_path):
    folder = tmp_path / "cards"
    code, _, _ = _run(capsys, ["card", "--modality", "fingerprint", "--out", f"{folder}/"])
    assert code == 0
    assert sorted(p.name for p in folder.iterdir()) == ["fingerprint_card.html", "fingerprint_card.md"]


@pytest.mark.parametrize("port", ["0", "99999"])
def test_serve_refuses_impossible_ports(capsys, port):
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--port", port])
    assert exit_info.value.code == 2 and "TCP port" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("module", "hint"),
    [("torch", "genderclass[train]"), ("matplotlib.pyplot", "genderclass[report]"), ("uvicorn", "--force-reinstall")],
)
def test_a_missing_module_names_what_to_install(capsys, caplog, monkeypatch, module, hint):
    from genderclass.cli import commands

    def missing(args):
        raise ModuleNotFoundError(f"No module named '{module}'", name=module)

    monkeypatch.setattr(commands, "cmd_info", missing)
    code, out, _ = _run(capsys, ["info"])
    assert code == 3 and out == "" and hint in caplog.text


@pytest.mark.parametrize(
    ("argv", "verbose", "quiet"),
    [
        (["predict", "x.jpg"], 0, False),
        (["-q", "predict", "x.jpg"], 0, True),
        (["predict", "-q", "x.jpg"], 0, True),
        (["predict", "x.jpg", "-vv"], 2, False),
        (["-v", "predict", "x.jpg"], 1, False),
        (["info", "--quiet"], 0, True),
        (["-q", "predict", "-v", "x.jpg"], 1, False),  # after the command: it replaces what came before
        (["-v", "predict", "-q", "x.jpg"], 0, True),
        (["-v", "predict", "-vv", "x.jpg"], 2, False),
    ],
)
def test_verbosity_flags_before_or_after_the_command(argv, verbose, quiet):
    from genderclass.cli.main import parse_args

    args = parse_args(argv)
    assert (args.verbose, args.quiet) == (verbose, quiet)


def test_verbosity_flags_on_one_side_exclude_each_other(capsys):
    for argv in (["-v", "-q", "info"], ["info", "-v", "-q"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2 and "not allowed with" in capsys.readouterr().err


def test_serve_flags_default_to_the_web_settings():
    """`genderclass serve` and create_app() without settings run the same server."""
    from genderclass.cli.main import build_parser
    from genderclass.web.cli import settings_from_args
    from genderclass.web.settings import WebSettings

    # on loopback (the default host) it also refuses requests naming another host (DNS rebinding)
    assert settings_from_args(build_parser().parse_args(["serve"])) == WebSettings(loopback_only=True)
    args = build_parser().parse_args(["serve", "--max-upload-mb", "2", "--threads", "2", "--max-files", "3"])
    expected = WebSettings(max_upload_bytes=2 * 1024 * 1024, threads=2, max_files=3, loopback_only=True)
    assert settings_from_args(args) == expected
    assert settings_from_args(build_parser().parse_args(["serve", "--host", "0.0.0.0"])).loopback_only is False


def test_serve_on_a_port_in_use_is_a_usage_error(capsys, caplog):
    """uvicorn exits with 3 when it cannot bind, which here means "missing optional extra": 2 instead."""
    import socket

    pytest.importorskip("uvicorn")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, _ = _run(capsys, ["serve", "--port", str(port)])
    assert code == 2 and out == ""
    assert any(f"could not start on 127.0.0.1:{port}" in r.getMessage() for r in caplog.records)


def test_a_failed_annotation_keeps_every_result_line(capsys, caplog, photo_dir, tiny_face_model, monkeypatch, tmp_path):
    """One annotated copy that cannot be written (e.g. a name too long): a warning and exit 1, and
    still exactly one result line per input."""
    import genderclass.inference.annotate as annotate_module

    real = annotate_module.write_annotated

    def failing_for_one(path, result, folder, taken=None):
        if Path(path).name == "a_dark.jpg":
            raise OSError("File name too long")
        return real(path, result, folder, taken)

    monkeypatch.setattr(annotate_module, "write_annotated", failing_for_one)
    argv = [
        "predict",
        str(photo_dir),
        "--model",
        str(tiny_face_model),
        "--no-detect",
        "--annotate",
        str(tmp_path / "a"),
    ]
    code, out, _ = _run(capsys, argv)
    assert code == 1 and len(_json_lines(out)) == 5
    written = ["b_bright.annotated.png", "c_red.annotated.png"]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["annotated.csv", *written]
    assert (tmp_path / "a" / "annotated.csv").read_text().count(".annotated.png") == 2  # the failed one is not listed
    assert any("could not write the annotated copy" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--val-fraction", "0.5", "--test-fraction", "0.5"], "must leave images to train on"),
        (["--test-fraction", "0.2", "--test-files", "test.txt"], "do not combine"),
        (["--test-files", "runs/face/split.csv"], "a .txt list"),
        (["--modality", "fingerprint", "--outside-fill", "0.5"], "face crops only"),
        (["--modality", "fingerprint", "--hair-erase", "0.5"], "face crops only"),
        (["--modality", "fingerprint", "--yaw-warp", "20"], "faces only"),
        (["--modality", "fingerprint", "--margin", "0.2"], "face crops only"),
        (["--modality", "fingerprint", "--margin", "0"], "face crops only"),
    ],
)
def test_train_refuses_impossible_settings(capsys, caplog, tmp_path, flags, message):
    code, out, _ = _run(capsys, ["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), *flags])
    assert code == 2 and out == "" and not (tmp_path / "run").exists()
    assert any(message in r.getMessage() for r in caplog.records)


def test_augment_flag_sets_the_fingerprint_geometry(capsys, caplog, tmp_path):
    parser = build_parser()
    fp = commands.resolve_train_config(parser.parse_args(["train", "--modality", "fingerprint", "--out", "r"]))
    face = commands.resolve_train_config(parser.parse_args(["train", "--out", "r"]))
    assert (fp.augment, face.augment) == ("affine", "affine")
    exact = commands.resolve_train_config(
        parser.parse_args(["train", "--modality", "fingerprint", "--out", "r", "--augment", "exact"])
    )
    assert exact.augment == "exact"
    code = main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--augment", "exact"])
    assert code == 2 and "Traceback" not in capsys.readouterr().err
    assert any("fingerprints only" in r.getMessage() for r in caplog.records)
    assert not (tmp_path / "run").exists()
    from genderclass.config import TrainConfig

    with pytest.raises(ValueError, match="unknown augment"):
        TrainConfig(modality="fingerprint", augment="wobbly")


def test_modality_is_case_blind_as_in_the_api(capsys, photo_dir, tiny_face_model):
    argv = [
        "predict",
        "--modality",
        "Face",
        "--model",
        str(tiny_face_model),
        "--no-detect",
        str(photo_dir / "a_dark.jpg"),
    ]
    code, out, _ = _run(capsys, argv)
    assert code == 0 and _json_lines(out)[0]["error"] is None


def test_fuse_warns_when_file_names_name_several_people(capsys, caplog, tmp_path, tiny_fingerprint_model, write_image):
    rng = np.random.default_rng(7)
    names = ["12__M_Left_index_finger.png", "12__M_Left_thumb_finger.png", "3__F_Right_ring_finger.BMP"]
    prints = [
        write_image(tmp_path / n, np.dstack([rng.integers(0, 256, (103, 96), dtype=np.uint8)] * 3)) for n in names
    ]
    argv = ["predict", "--fuse", "--model", str(tiny_fingerprint_model)]
    with caplog.at_level(logging.WARNING):
        code, out, _ = _run(capsys, [*argv, *map(str, prints[:2])])
    assert code == 0 and "people" not in caplog.text  # one person's prints: nothing to say
    with caplog.at_level(logging.WARNING):
        code, out, _ = _run(capsys, [*argv, *map(str, prints)])
    assert code == 0 and _json_lines(out)[-1]["n"] == 3  # still fused as asked, and said
    assert "file names name 2 people (3, 12)" in caplog.text


def test_evaluate_warns_when_the_data_goes_beyond_the_models_test_split(
    capsys, caplog, tmp_path, tiny_fingerprint_model, write_image
):
    import shutil

    rng = np.random.default_rng(5)
    for label in ("male", "female"):
        for i in range(2):
            gray = rng.integers(0, 256, (103, 96), np.uint8)
            write_image(tmp_path / "data" / label / f"{i}.png", np.dstack([gray] * 3))
    model = tmp_path / "model" / "fp.onnx"  # an export: NAME.onnx, NAME.json and NAME.test_files.txt
    model.parent.mkdir()
    shutil.copy(tiny_fingerprint_model, model)
    shutil.copy(tiny_fingerprint_model.with_suffix(".json"), model.with_suffix(".json"))
    listed = model.with_name("fp.test_files.txt")
    listed.write_text("male/0.png\nfemale/0.png\n")
    argv = ["evaluate", "--model", str(model), "--data", str(tmp_path / "data"), "--format", "folder"]
    with caplog.at_level(logging.WARNING):
        code, out, _ = _run(capsys, [*argv, "--out", str(tmp_path / "all")])
    assert code == 0 and json.loads(out)["n"] == 4  # evaluated as asked, and said
    assert "2 of the 4 files are not in the model's test split (fp.test_files.txt)" in caplog.text
    assert f"--split-file {listed} evaluates its 2 test files only" in caplog.text
    files = json.loads((tmp_path / "all" / "metrics.json").read_text())["data"]["files"]
    assert files == "all (2 outside the model's test split: probably trained on)"
    with caplog.at_level(logging.WARNING):  # --limit: still warned; counted among the files drawn
        code, out, _ = _run(capsys, [*argv, "--limit", "2", "--out", str(tmp_path / "drawn")])
    drawn = json.loads((tmp_path / "drawn" / "metrics.json").read_text())
    beyond = sum(Path(p["path"]).name != "0.png" for p in drawn["predictions"])
    assert code == 0 and len(drawn["predictions"]) == 2
    assert drawn["data"]["files"].startswith(f"all ({beyond} outside the model's test split")
    for extra in (["--split-file", str(listed)], []):  # its test files only; or data it never saw
        if not extra:
            listed.write_text("other/0.png\n")
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            code, out, _ = _run(capsys, [*argv, *extra, "--out", str(tmp_path / f"ev{len(extra)}")])
        assert code == 0 and "test split" not in caplog.text


def test_every_command_is_registered_and_card_reads_the_modality_in_any_case():
    from genderclass.cli.main import parse_args

    names = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert set(names) == {"train", "export", "predict", "evaluate", "bench", "info", "serve", "card"}
    assert parse_args(["card", "--modality", "Fingerprint"]).modality == "fingerprint"
