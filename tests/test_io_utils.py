"""Output file names: safe in any file system, any script kept, unique (case-insensitively too)."""

from __future__ import annotations

import pytest

from braintumor.io_utils import safe_stem, unique_name


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("Gehirn_Übersicht", "Gehirn_Übersicht"),
        ("Gehirn_U\u0308bersicht", "Gehirn_Übersicht"),  # macOS (NFD) spelling
        ("脑", "脑"),
        ("МРТ 1.v2", "МРТ 1.v2"),
        ('a<>:"/\\|?*b', "a_b"),
        ("line\nbreak\x00nul", "line_break_nul"),
        ("x\u202egnp.exe", "x_gnp.exe"),  # right-to-left override
        ("bad\udcffbyte", "bad_byte"),  # undecodable byte (surrogate escape)
        ("..hidden. ", "hidden"),
        ("CON", "_CON"),
        ("...", "input"),
    ],
)
def test_safe_stem(name: str, stem: str) -> None:
    assert safe_stem(name) == stem


def test_safe_stem_length_in_bytes() -> None:
    stem = safe_stem("脑" * 100, max_bytes=120)
    assert stem == "脑" * 40 and len(stem.encode()) == 120


def test_unique_name_fold_case() -> None:
    taken: set[str] = set()
    assert [unique_name(n, taken, fold_case=True) for n in ["A", "a", "a_2", "ß", "SS"]] == [
        "A", "a_2", "a_2_2", "ß", "SS_2"
    ]  # fmt: skip
    exact: set[str] = set()
    assert [unique_name(n, exact) for n in ["A", "a", "A"]] == ["A", "a", "A_2"]
