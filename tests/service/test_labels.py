"""Label names from a file: one per line or a JSON list, refused with the line at fault."""

from __future__ import annotations

from pathlib import Path

import pytest

from failwise.exceptions import InputError
from failwise.service import check_label_count, read_labels


def _file(tmp_path: Path, text: str, name: str = "labels.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_labels_are_read_one_per_line_or_as_a_json_list(tmp_path: Path) -> None:
    assert read_labels(_file(tmp_path, " refund \r\ncard lost\n\n\n")) == ("refund", "card lost")
    assert read_labels(_file(tmp_path, '["a", "b", "مرحبا"]', "labels.json")) == ("a", "b", "مرحبا")
    assert read_labels(_file(tmp_path, '  ["x", "y"]\n')) == ("x", "y")  # JSON without .json
    assert read_labels(_file(tmp_path, "\ufeffbom first\nsecond\n")) == ("bom first", "second")


@pytest.mark.parametrize(
    ("text", "name", "match"),
    [
        ("", "labels.txt", "holds no label names"),
        ("a\n\nb\n", "labels.txt", "line 2 is blank"),
        ("refund\nRefund\n", "labels.txt", r"line 2 repeats 'Refund' \(line 1\)"),
        ("a\n" + "x" * 201 + "\n", "labels.txt", "line 2 is 201 characters long"),
        ("[1, 2]", "labels.json", "expected a JSON list of strings"),
        ('{"a": 1}', "labels.json", "got a dict"),
        ('["a",', "labels.json", "is not valid JSON"),
        ('["a", " "]', "labels.json", "item 2 is blank"),
    ],
)
def test_a_bad_labels_file_is_refused_naming_what_is_wrong(
    tmp_path: Path, text: str, name: str, match: str
) -> None:
    with pytest.raises(InputError, match=match):
        read_labels(_file(tmp_path, text, name))


def test_a_missing_or_binary_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read it"):
        read_labels(tmp_path / "nope.txt")
    binary = tmp_path / "labels.bin"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InputError, match="is not UTF-8"):
        read_labels(binary)


def test_the_label_count_must_match_the_policy() -> None:
    check_label_count(("a", "b"), 2, "--labels f")
    check_label_count(None, 2, "--labels f")
    check_label_count(("a",), None, "--labels f")
    with pytest.raises(InputError, match="--labels f names 1 labels, but the policy has 3"):
        check_label_count(("a",), 3, "--labels f")


@pytest.mark.parametrize("path", [None, 3, ""])
def test_a_path_that_is_not_a_file_name_is_refused_saying_what_it_got(path: object) -> None:
    with pytest.raises(InputError, match=r"`path` must be the path of a labels file.*; got "):
        read_labels(path)  # type: ignore[arg-type]
