"""Dataset readers: UTKFace and SOCOFing file names, ROOT/male|female folders, CSV manifests."""

from __future__ import annotations

from pathlib import Path

import pytest

from genderclass.data.readers import (
    image_files,
    parse_label,
    parse_socofing_name,
    parse_utkface_name,
    read_csv,
    read_dataset,
    read_folder,
    read_socofing,
    read_utkface,
)

# (name, age, label, race or None): the seven irregular names listed in the datasets README
UTK_IRREGULAR = [
    ("14_0_0_2017011022340900.jpg.chip.jpg", 14, 0, "white"),  # 16-digit time
    ("24_0_1_20170116220224657 .jpg.chip.jpg", 24, 0, "black"),  # space before .jpg
    ("28_1_2_201701161846515488.jpg.chip.jpg", 28, 1, "asian"),  # 18-digit time
    ("39_1_20170116174525125.jpg.chip.jpg", 39, 1, None),  # no race: the date must not be read as race
    ("55_0_0_20170116232725357jpg.chip.jpg", 55, 0, "white"),  # no dot before jpg
    ("61_1_20170109142408075.jpg.chip.jpg", 61, 1, None),  # no race
    ("61_1_20170109150557335.jpg.chip.jpg", 61, 1, None),  # no race
]
UTK_REGULAR = [
    ("100_0_0_20170112213500903.jpg.chip.jpg", 100, 0, "white"),
    ("1_1_4_20161221193016140.jpg.chip.jpg", 1, 1, "others"),
    ("26_0_3_20170119180104633.jpg.chip.jpg", 26, 0, "indian"),
    ("116_1_2_20170112220255503.jpg.chip.jpg", 116, 1, "asian"),
    ("9_1_1_20170109204302117.jpg.chip.jpg", 9, 1, "black"),
    ("007_0_1_20170109204302117.jpg.chip.jpg", 7, 0, "black"),  # leading zero in age
]
UTK_GARBAGE = [
    "",
    "abc.jpg",
    "photo.jpg.chip.jpg",
    "25_2_0_20170116174525125.jpg.chip.jpg",  # gender 2
    "25_0_5_20170116174525125.jpg.chip.jpg",  # race 5
    "25_0_0.jpg.chip.jpg",  # no date
    "25_0_0_20170116174525125.jpg",  # not a chip name
    "25_0_0_20170116174525125.jpg.chip.jpg.txt",
    "1234_0_0_20170116174525125.jpg.chip.jpg",  # 4-digit age
    "_0_0_20170116174525125.jpg.chip.jpg",
    "25_0_0_2017011617452512X.jpg.chip.jpg",
    "25_f_0_20170116174525125.jpg.chip.jpg",
    "25_0_0_20170116174525125_extra.jpg.chip.jpg",
]


@pytest.mark.parametrize(("name", "age", "label", "race"), UTK_IRREGULAR + UTK_REGULAR)
def test_parse_utkface_names(name, age, label, race):
    sample = parse_utkface_name(name)
    assert sample is not None, name
    assert sample.label == label
    assert sample.label_name == ("female" if label else "male")
    assert sample.attrs["age"] == str(age)
    if race is None:
        assert "race" not in sample.attrs
    else:
        assert sample.attrs["race"] == race
    assert set(sample.attrs) <= {"age", "race"}
    assert sample.subject is None


def test_missing_race_is_not_read_from_the_date():
    # Naive splitting on "_" would give race = "20170116174525125"[0] or the whole date.
    sample = parse_utkface_name("39_1_20170116174525125.jpg.chip.jpg")
    assert sample.attrs == {"age": "39"}
    assert sample.label == 1


@pytest.mark.parametrize("name", UTK_GARBAGE)
def test_parse_utkface_rejects_garbage(name):
    assert parse_utkface_name(name) is None


def test_read_utkface_folder(tmp_path):
    names = [n for n, *_ in UTK_IRREGULAR + UTK_REGULAR]
    nested = tmp_path / "part2"
    nested.mkdir()
    for i, name in enumerate(names):
        (nested if i % 3 == 0 else tmp_path).joinpath(name).write_bytes(b"x")  # content is not read
    (tmp_path / "bad_name.jpg").write_bytes(b"x")
    (tmp_path / "25_2_0_20170116174525125.jpg.chip.jpg").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("not an image extension: ignored, not 'skipped'")
    result = read_utkface(tmp_path)
    assert sorted(Path(s.path).name for s in result.samples) == sorted(names)
    assert all(Path(s.path).is_file() for s in result.samples)
    assert sorted(name.split(":")[0] for name in result.skipped) == [
        "25_2_0_20170116174525125.jpg.chip.jpg",
        "bad_name.jpg",
    ]
    assert all(": not named AGE_GENDER[_RACE]_DATETIME.jpg.chip.jpg (gender 0/1" in name for name in result.skipped)
    by_name = {Path(s.path).name: s for s in result.samples}
    for name, age, label, race in UTK_IRREGULAR:
        assert by_name[name].label == label
        assert by_name[name].attrs.get("race") == race
        assert by_name[name].attrs["age"] == str(age)


# (name, subject, label, hand, finger, alteration)
SOCOFING_NAMES = [
    ("1__M_Left_index_finger.BMP", "1", 0, "left", "index", None),
    ("100__F_Right_thumb_finger.png", "100", 1, "right", "thumb", None),
    ("12__M_Left_little_finger.bmp", "12", 0, "left", "little", None),
    ("12__m_left_middle_finger.Bmp", "12", 0, "left", "middle", None),
    ("7__F_Right_ring_finger.PNG", "7", 1, "right", "ring", None),
    ("3__F_Left_ring_finger_Obl.BMP", "3", 1, "left", "ring", "obl"),
    ("3__F_Left_ring_finger_CR.bmp", "3", 1, "left", "ring", "cr"),
    ("3__F_Left_ring_finger_Zcut.PNG", "3", 1, "left", "ring", "zcut"),
    ("540__M_Right_thumb_finger_zcut.png", "540", 0, "right", "thumb", "zcut"),
]
SOCOFING_GARBAGE = [
    "1_M_Left_index_finger.BMP",  # single underscore
    "1__X_Left_index_finger.BMP",
    "1__M_Middle_index_finger.BMP",
    "1__M_Left_pinky_finger.BMP",
    "1__M_Left_index_finger.jpg",
    "1__M_Left_index_finger_Blur.BMP",
    "1__M_Left_index.BMP",
    "__M_Left_index_finger.BMP",
    "a__M_Left_index_finger.BMP",
    "1__M_Left_index_finger.BMP.txt",
]


@pytest.mark.parametrize(("name", "subject", "label", "hand", "finger", "alteration"), SOCOFING_NAMES)
def test_parse_socofing_names(name, subject, label, hand, finger, alteration):
    sample = parse_socofing_name(name)
    assert sample is not None, name
    assert sample.subject == subject
    assert sample.label == label
    assert sample.attrs["hand"] == hand
    assert sample.attrs["finger"] == finger
    assert sample.attrs.get("alteration") == alteration
    assert "level" not in sample.attrs  # only the reader knows the folder


@pytest.mark.parametrize("name", SOCOFING_GARBAGE)
def test_parse_socofing_rejects_garbage(name):
    assert parse_socofing_name(name) is None


def test_read_socofing_tree_with_altered_levels(tmp_path):
    real = tmp_path / "Real"
    real.mkdir()
    for name in ("1__M_Left_index_finger.BMP", "2__F_Right_thumb_finger.png", "2__F_Right_ring_finger.PNG"):
        (real / name).write_bytes(b"x")
    for level in ("Easy", "Medium", "Hard"):
        folder = tmp_path / "Altered" / f"Altered-{level}"
        folder.mkdir(parents=True)
        (folder / "1__M_Left_index_finger_CR.BMP").write_bytes(b"x")
        (folder / "2__F_Right_thumb_finger_Obl.bmp").write_bytes(b"x")
        (folder / "2__F_Right_thumb_finger_Zcut.BMP").write_bytes(b"x")
    (real / "Thumbs.db").write_bytes(b"x")  # ignored (not an image extension)
    (real / "readme.png").write_bytes(b"x")  # image extension, bad name -> skipped
    result = read_socofing(tmp_path)
    assert len(result.samples) == 3 + 3 * 3
    assert result.skipped == [
        f"{Path('Real') / 'readme.png'}: not named SUBJECT__M|F_Left|Right_FINGER_finger[_Obl|_CR|_Zcut].bmp|png"
    ]
    real_samples = [s for s in result.samples if Path(s.path).parent.name == "Real"]
    assert len(real_samples) == 3
    assert all("level" not in s.attrs and "alteration" not in s.attrs for s in real_samples)
    altered = [s for s in result.samples if "alteration" in s.attrs]
    assert len(altered) == 9
    for sample in altered:
        assert sample.attrs["level"] == Path(sample.path).parent.name.split("-")[1].lower()
        assert sample.attrs["level"] in {"easy", "medium", "hard"}
    assert {s.subject for s in result.samples} == {"1", "2"}
    assert {s.label for s in result.samples if s.subject == "1"} == {0}
    assert {s.label for s in result.samples if s.subject == "2"} == {1}


def test_read_socofing_flat_folder(tmp_path):
    for name in ("5__M_Left_index_finger.BMP", "5__M_Left_thumb_finger_Obl.BMP"):
        (tmp_path / name).write_bytes(b"x")
    result = read_socofing(tmp_path)
    assert len(result.samples) == 2
    # an altered print outside an Altered-* folder has no level
    assert all("level" not in s.attrs for s in result.samples)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("male", 0),
        ("Male", 0),
        (" M ", 0),
        ("man", 0),
        ("Men", 0),
        ("males", 0),
        ("0", 0),
        ("female", 1),
        ("F", 1),
        ("Woman", 1),
        ("women", 1),
        ("1", 1),
    ],
)
def test_parse_label(value, expected):
    assert parse_label(value) == expected


@pytest.mark.parametrize("value", ["", "x", "2", "unknown", "mail"])
def test_parse_label_rejects(value):
    with pytest.raises(ValueError):
        parse_label(value)


def test_read_folder(tmp_path):
    (tmp_path / "male" / "deep" / "er").mkdir(parents=True)
    (tmp_path / "Female").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "male" / "a.jpg").write_bytes(b"x")
    (tmp_path / "male" / "deep" / "er" / "b.PNG").write_bytes(b"x")
    (tmp_path / "male" / "notes.txt").write_text("ignored")
    (tmp_path / "Female" / "c.bmp").write_bytes(b"x")
    (tmp_path / "other" / "d.jpg").write_bytes(b"x")
    (tmp_path / "loose.jpg").write_bytes(b"x")  # not under a label folder
    result = read_folder(tmp_path)
    got = sorted((Path(s.path).name, s.label) for s in result.samples)
    assert got == [("a.jpg", 0), ("b.PNG", 0), ("c.bmp", 1)]
    assert result.skipped == [
        "other/: not a label folder (male, female, m, f, 0, 1, ...)",
        f"1 image directly in {tmp_path} (e.g. loose.jpg), outside male/ and female/",
    ]
    assert all(s.subject is None and s.attrs == {} for s in result.samples)


def test_read_folder_without_label_folders(tmp_path):
    (tmp_path / "cats").mkdir()
    with pytest.raises(ValueError, match="male"):
        read_folder(tmp_path)


def test_read_csv(tmp_path):
    images = tmp_path / "imgs"
    images.mkdir()
    absolute = tmp_path / "elsewhere.png"
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "path, label ,subject,age,race\n"
        "imgs/a.jpg,male,s1,30,white\n"
        f"{absolute},F,s2,,asian\n"
        "imgs/b.jpg,banana,s3,40,black\n"
        "imgs/c.jpg, Female ,,22,\n"
        "imgs/d.jpg,,s4,1,white\n"
        "imgs/e.jpg,1,s5,50,indian\n"
    )
    result = read_csv(manifest)
    assert [Path(s.path).name for s in result.samples] == ["a.jpg", "elsewhere.png", "c.jpg", "e.jpg"]
    first, second, third, fourth = result.samples
    assert Path(first.path) == tmp_path / "imgs" / "a.jpg"  # relative to the CSV's folder, not the cwd
    assert Path(second.path) == absolute
    assert [s.label for s in result.samples] == [0, 1, 1, 1]
    assert first.subject == "s1" and second.subject == "s2" and third.subject is None
    assert first.attrs == {"age": "30", "race": "white"}
    assert second.attrs == {"race": "asian"}  # empty values are not attributes
    assert third.attrs == {"age": "22"}
    assert fourth.attrs == {"age": "50", "race": "indian"}
    assert len(result.skipped) == 2
    assert result.skipped[0].startswith("line 4:")  # line numbers count the header as line 1
    assert result.skipped[1].startswith("line 6:")


def test_read_csv_relative_to_csv_not_cwd(tmp_path, monkeypatch):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "m.csv").write_text("path,label\nx.png,m\n")
    monkeypatch.chdir(tmp_path)
    result = read_csv(Path("sub") / "m.csv")
    assert Path(result.samples[0].path).resolve() == (sub / "x.png").resolve()
    assert result.samples[0].subject is None


def test_read_csv_needs_path_and_label(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("file,gender\na.jpg,male\n")
    with pytest.raises(ValueError, match="path"):
        read_csv(manifest)


def test_read_dataset_dispatch_and_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown format"):
        read_dataset(tmp_path, "imagenet")
    with pytest.raises(FileNotFoundError):
        read_dataset(tmp_path / "missing", "folder")
    (tmp_path / "male").mkdir()
    with pytest.raises(ValueError, match="no labelled images"):
        read_dataset(tmp_path, "folder")
    (tmp_path / "male" / "a.png").write_bytes(b"x")
    assert len(read_dataset(tmp_path, "folder").samples) == 1
    (tmp_path / "m.csv").write_text("path,label\nmale/a.png,male\n")
    assert read_dataset(tmp_path / "m.csv", "csv").samples[0].label == 0


def test_a_file_for_a_folder_format_or_a_folder_for_csv_is_a_clear_error(tmp_path):
    from genderclass.data.readers import read_dataset

    manifest = tmp_path / "data.csv"
    manifest.write_text("path,label\n")
    for fmt in ("folder", "utkface", "socofing"):
        with pytest.raises(ValueError, match=f"--format {fmt} reads a folder, but .* is a file"):
            read_dataset(manifest, fmt)
    with pytest.raises(ValueError, match="--format csv reads a CSV manifest, but .* is a folder"):
        read_dataset(tmp_path, "csv")


def test_finger_in_name_reads_socofing_style_names_with_extra_text():
    from genderclass.data.readers import finger_in_name

    names = {
        "100__M_Left_index_finger.BMP": "index",
        "100__M_Left_index_finger (1).png": "index",
        "100__F_Right_little_finger_Zcut.bmp": "little",
        "scan_Thumb_finger.jpg": "thumb",
        "ring_fingerprint.png": None,  # not "ring_finger"
        "bring_finger.png": None,  # a word that merely ends in a finger's name
        "photo.jpg": None,
    }
    assert {name: finger_in_name(name) for name in names} == names


def test_read_csv_from_a_spreadsheet_with_byte_order_mark_and_capitalised_headers(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_bytes("\ufeffPath,Label,Subject,Race\na.jpg,male,s1,white\n".encode())
    (sample,) = read_csv(manifest).samples
    assert (Path(sample.path).name, sample.label, sample.subject, sample.attrs) == ("a.jpg", 0, "s1", {"Race": "white"})


def test_read_csv_skips_unusable_rows_and_counts_a_file_listed_twice_once(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "path,label,subject\n"
        "a.jpg,male,s1\n"
        ",female,s2\n"  # no path: would read as the CSV's folder
        "b.jpg,female,s3,surplus\n"  # more fields than columns
        "a.jpg,male,s1\n"  # the same row again: counted once
        "./c.jpg,male,s4\n"
        "c.jpg,female,s4\n"  # the same file with another label: neither row is used
        "d.jpg,male,s5\n"
        "d.jpg,male,s6\n"  # the same file under another subject: neither row is used either
    )
    result = read_csv(manifest)
    assert [Path(s.path).name for s in result.samples] == ["a.jpg"]
    assert [line.split(":")[0] for line in result.skipped] == ["line 3", "line 4", "line 5", "line 7", "line 9"]
    assert "no path" in result.skipped[0] and "more fields" in result.skipped[1]
    assert "counted once" in result.skipped[2] and "both left out" in result.skipped[3]
    assert "both left out" in result.skipped[4]


def test_read_csv_keeps_rows_ending_in_a_comma_and_sees_one_file_under_two_spellings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,label\na.jpg,male,\n{tmp_path / 'a.jpg'},female\n")  # same file, other label
    result = read_csv(Path("m.csv"))
    assert result.samples == [] and "both left out" in result.skipped[0]
    manifest.write_text("path,label\na.jpg,male,\nb.jpg,female,,\n")  # spreadsheet exports: empty trailing fields
    assert [Path(s.path).name for s in read_csv(manifest).samples] == ["a.jpg", "b.jpg"]


def test_read_csv_that_is_not_utf8_is_a_clear_error(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_bytes("path,label,city\na.jpg,male,Zürich\n".encode("cp1252"))
    with pytest.raises(ValueError, match="not UTF-8 text .*: save it as CSV UTF-8"):
        read_csv(manifest)


def test_linked_folders_are_read_and_a_link_loop_ends(tmp_path):
    """A dataset assembled from links to other folders: every image is found, each real folder once."""
    elsewhere = tmp_path / "elsewhere" / "male"
    elsewhere.mkdir(parents=True)
    (elsewhere / "a.png").write_bytes(b"x")
    data = tmp_path / "data"
    (data / "female").mkdir(parents=True)
    (data / "female" / "b.png").write_bytes(b"x")
    (data / "male").symlink_to(elsewhere, target_is_directory=True)
    (data / "female" / "loop").symlink_to(data, target_is_directory=True)  # a link back up the tree
    found = [p.relative_to(data).as_posix() for p in image_files(data)]
    assert "male/a.png" in found and "female/b.png" in found
    assert len(found) == len({Path(p).name for p in found}) == 2  # the loop adds nothing twice
    assert [s.label for s in read_folder(data).samples] == [1, 0]


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_read_csv_separated_by_semicolons_or_tabs_as_spreadsheets_save_it_in_some_locales(tmp_path, delimiter):
    manifest = tmp_path / "m.csv"
    rows = ["\ufeffPath", "Label", "Subject", "score"], ["a.jpg", "female", "s1", "0,5"], ["b.jpg", "m", "s2", "1,25"]
    manifest.write_bytes("".join(delimiter.join(row) + "\n" for row in rows).encode())
    result = read_csv(manifest)
    assert [(Path(s.path).name, s.label, s.subject, s.attrs) for s in result.samples] == [
        ("a.jpg", 1, "s1", {"score": "0,5"}),
        ("b.jpg", 0, "s2", {"score": "1,25"}),
    ]
    assert result.skipped == []


def test_read_csv_stays_comma_separated_when_the_header_has_commas(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label,note\nx;y.jpg,male,a;b\n")  # semicolons inside fields stay text
    (sample,) = read_csv(manifest).samples
    assert (Path(sample.path).name, sample.attrs) == ("x;y.jpg", {"note": "a;b"})
