"""Dataset readers: UTKFace names, SOCOFing names, ROOT/male|female folders and CSV manifests.

Each reader returns a list of ``Sample`` records; unparseable entries are counted and logged,
never fatal.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..config import IMAGE_EXTENSIONS, LABELS

# The finger names belong to the fingerprint modality; still importable from here, where the training,
# evaluation, web app and CLI parser modules import them.
from ..modalities.fingerprint import FINGERS as FINGERS
from ..modalities.fingerprint import finger_in_name as finger_in_name
from ..modalities.fingerprint import finger_name as finger_name

log = logging.getLogger(__name__)

FORMATS = ("utkface", "socofing", "folder", "csv")
UTK_RACES = ("white", "black", "asian", "indian", "others")
_UTK_NAME = re.compile(r"^(\d{1,3})_([01])_(?:([0-4])_)?(\d{12,20})\s*\.?jpg\.chip\.jpg$", re.IGNORECASE)
_SOCOFING_NAME = re.compile(
    rf"^(\d+)__([MF])_(Left|Right)_({'|'.join(FINGERS)})_finger(?:_(Obl|CR|Zcut))?\.(bmp|png)$",
    re.IGNORECASE,
)
_LABEL_WORDS = {
    "male": 0, "m": 0, "man": 0, "men": 0, "males": 0, "0": 0,
    "female": 1, "f": 1, "woman": 1, "women": 1, "females": 1, "1": 1,
}  # fmt: skip


@dataclass
class Sample:
    """One labelled image. ``attrs`` are group attributes (race, age, hand, ...), as strings."""

    path: str
    label: int  # index into LABELS: 0 = male, 1 = female
    subject: str | None = None
    attrs: dict[str, str] = field(default_factory=dict)

    @property
    def label_name(self) -> str:
        return LABELS[self.label]


@dataclass
class ReadResult:
    samples: list[Sample]
    skipped: list[str] = field(default_factory=list)  # names that could not be parsed

    def log_summary(self, what: str) -> None:
        log.info("%s: %d samples read, %d skipped", what, len(self.samples), len(self.skipped))
        if self.skipped:
            log.warning("skipped %d of the entries, e.g. %s", len(self.skipped), self.skipped[:3])


def parse_label(value: str) -> int:
    """Map 'male'/'female' (and m/f, 0/1, man/woman) to a label index."""
    key = str(value).strip().lower()
    if key not in _LABEL_WORDS:
        raise ValueError(f"unknown label {value!r}; expected male or female")
    return _LABEL_WORDS[key]


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS


def image_files(root: Path) -> list[Path]:
    """Every image file under ``root``, sorted, following linked folders (a dataset assembled from
    links) but entering each real folder once and never one that holds ``root``, so a link loop ends
    and a link up the tree adds nothing from outside it."""
    found: list[Path] = []
    top = os.path.realpath(root)
    seen: set[str] = set()
    for folder, subfolders, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen or (real != top and top.startswith(real.rstrip(os.sep) + os.sep)):
            subfolders[:] = []
            continue
        seen.add(real)
        found.extend(path for name in names if is_image_file(path := Path(folder) / name))
    return sorted(found)


def parse_utkface_name(name: str) -> Sample | None:
    """Parse ``age_gender_race_datetime.jpg.chip.jpg``; race may be missing (attribute left out)."""
    match = _UTK_NAME.match(name)
    if not match:
        return None
    age, gender, race, _ = match.groups()
    attrs = {"age": str(int(age))}
    if race is not None:
        attrs["race"] = UTK_RACES[int(race)]
    return Sample(path=name, label=int(gender), attrs=attrs)


def parse_socofing_name(name: str) -> Sample | None:
    """Parse ``subject__M|F_Left|Right_finger_finger[_Obl|_CR|_Zcut].bmp|png``."""
    match = _SOCOFING_NAME.match(name)
    if not match:
        return None
    subject, sex, hand, finger, alteration, _ = match.groups()
    attrs = {"hand": hand.lower(), "finger": finger.lower()}
    if alteration:
        attrs["alteration"] = {"obl": "obl", "cr": "cr", "zcut": "zcut"}[alteration.lower()]
    return Sample(path=name, label=1 if sex.upper() == "F" else 0, subject=subject, attrs=attrs)


def _read_named(root: Path, parse: Callable[[str], Sample | None], files: list[Path], pattern: str) -> ReadResult:
    result = ReadResult(samples=[])
    for path in sorted(files):
        sample = parse(path.name)
        if sample is None:
            result.skipped.append(f"{path.relative_to(root)}: not named {pattern}")
            continue
        sample.path = str(path)
        result.samples.append(sample)
    return result


def read_utkface(root: str | Path) -> ReadResult:
    root = Path(root)
    return _read_named(
        root,
        parse_utkface_name,
        image_files(root),
        "AGE_GENDER[_RACE]_DATETIME.jpg.chip.jpg (gender 0/1, race 0-4, 12-20 digits of date and time)",
    )


def read_socofing(root: str | Path) -> ReadResult:
    """Read ``Real/`` and optional ``Altered/Altered-*/`` (or a folder of prints directly)."""
    root = Path(root)
    result = _read_named(
        root, parse_socofing_name, image_files(root), "SUBJECT__M|F_Left|Right_FINGER_finger[_Obl|_CR|_Zcut].bmp|png"
    )
    for sample in result.samples:
        parent = Path(sample.path).parent.name
        if "alteration" in sample.attrs and parent.lower().startswith("altered-"):
            sample.attrs["level"] = parent.split("-", 1)[1].lower()
    return result


def read_folder(root: str | Path) -> ReadResult:
    """Read ``ROOT/male/**`` and ``ROOT/female/**`` (any image extension, any depth)."""
    root = Path(root)
    result = ReadResult(samples=[])
    found = False
    for label_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            label = parse_label(label_dir.name)
        except ValueError:
            result.skipped.append(f"{label_dir.name}/: not a label folder (male, female, m, f, 0, 1, ...)")
            continue
        found = True
        for path in image_files(label_dir):
            result.samples.append(Sample(path=str(path), label=label))
    if not found:
        raise ValueError(f"{root} has no male/ or female/ sub-folder")
    unlabelled = [p.name for p in sorted(root.iterdir()) if is_image_file(p)]
    if unlabelled:  # beside the label folders: no label to read
        n = len(unlabelled)
        result.skipped.append(
            f"{n} image{'s' * (n > 1)} directly in {root} (e.g. {unlabelled[0]}), outside male/ and female/"
        )
    return result


def read_csv(path: str | Path) -> ReadResult:
    """Read a manifest ``path,label[,subject][,extra...]``; extra columns become group attributes.
    Fields are separated by commas, or by semicolons or tabs throughout (spreadsheets in locales
    whose decimal mark is a comma save "CSV" that way), as the header row shows.

    Relative paths are resolved against the CSV's folder. The column names ``path``, ``label`` and
    ``subject`` are matched in any case, and a spreadsheet's byte-order mark is ignored. A row that
    cannot be used (no path, a bad label, more fields than columns) is reported and skipped; a file
    listed twice counts once, or not at all if the two rows disagree on its label or subject.
    """
    path = Path(path)
    try:
        return _read_csv_rows(path)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text ({exc.reason}): save it as CSV UTF-8") from None


def _read_csv_rows(path: Path) -> ReadResult:
    result = ReadResult(samples=[])
    seen: dict[str, tuple[int, Sample]] = {}  # image path -> the line that listed it first, and its sample
    conflicting: set[str] = set()
    with path.open(newline="", encoding="utf-8-sig") as handle:
        delimiter = _csv_delimiter(handle.readline())
        handle.seek(0)  # the decoder starts again, dropping a byte-order mark again
        reader = csv.DictReader(handle, delimiter=delimiter)
        columns = [_csv_column(c) for c in (reader.fieldnames or [])]
        if "path" not in columns or "label" not in columns:
            raise ValueError(f"{path}: CSV needs 'path' and 'label' columns, found {columns}")
        for line, row in enumerate(reader, start=2):
            if any((v or "").strip() for v in row.get(None) or []):  # type: ignore[call-overload]  # surplus fields
                result.skipped.append(f"line {line}: more fields than the {len(columns)} columns")
                continue
            row = {_csv_column(k): (v or "").strip() for k, v in row.items() if k}
            try:
                label = parse_label(row["label"])
            except ValueError as exc:
                result.skipped.append(f"line {line}: {exc}")
                continue
            if not row["path"]:
                result.skipped.append(f"line {line}: no path")
                continue
            image_path = Path(row["path"])
            if not image_path.is_absolute():
                image_path = path.parent / image_path
            attrs = {k: v for k, v in row.items() if k not in ("path", "label", "subject") and v != ""}
            sample = Sample(path=str(image_path), label=label, subject=row.get("subject") or None, attrs=attrs)
            key = os.path.abspath(sample.path)  # one file however the rows name it
            if key in seen:
                first, earlier = seen[key]
                if (earlier.label, earlier.subject) != (sample.label, sample.subject):
                    conflicting.add(key)
                    result.skipped.append(
                        f"line {line}: {row['path']} is also on line {first} with another label or "
                        "subject; both left out"
                    )
                else:
                    result.skipped.append(f"line {line}: {row['path']} is also on line {first}; counted once")
                continue
            seen[key] = (line, sample)
            result.samples.append(sample)
    result.samples = [s for s in result.samples if os.path.abspath(s.path) not in conflicting]
    return result


def _csv_delimiter(header: str) -> str:
    """The delimiter of a manifest, from its header row: a comma, or the semicolon or tab that
    spreadsheets use where the comma is the decimal mark (when that delimiter, and no comma,
    separates the 'path' and 'label' columns)."""
    for delimiter in (",", ";", "\t"):
        names = {_csv_column(c) for c in next(csv.reader([header], delimiter=delimiter), [])}
        if {"path", "label"} <= names:
            return delimiter
    return ","


def _csv_column(name: str) -> str:
    name = name.strip()
    return name.lower() if name.lower() in ("path", "label", "subject") else name


def read_dataset(data: str | Path, fmt: str) -> ReadResult:
    """Dispatch on ``fmt`` (one of FORMATS)."""
    readers = {"utkface": read_utkface, "socofing": read_socofing, "folder": read_folder, "csv": read_csv}
    if fmt not in readers:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    data = Path(data)
    if not data.exists():
        raise FileNotFoundError(f"data not found: {data}")
    if fmt == "csv" and data.is_dir():
        raise ValueError(f"--format csv reads a CSV manifest, but {data} is a folder (use --format folder or utkface)")
    if fmt != "csv" and not data.is_dir():
        raise ValueError(f"--format {fmt} reads a folder, but {data} is a file (a CSV manifest: --format csv)")
    result = readers[fmt](data)
    result.log_summary(f"{fmt} data at {data}")
    if not result.samples:
        raise ValueError(f"no labelled images found in {data} (format {fmt})")
    return result
