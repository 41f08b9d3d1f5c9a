"""The README and docs/ stay true to the code: every COALMINE_* variable they name is a setting,
every default they give is the one `Settings` has, every setting is in docs/settings.md, and
every file or link they cite exists."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from runtime.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FIELDS = {field.name: field.default for field in msgspec.structs.fields(Settings)}
VARIABLE = re.compile(r"\bCOALMINE_([A-Z][A-Z0-9_]*[A-Z0-9])\b")
TOP = "coalmine|ingest_api|processors|domain|runtime|schemas|queries|dashboards|tests|bench|docs|\\.ci"
CITED_PATH = re.compile(rf"(?<![\w/.<>-])((?:{TOP})/[\w./-]*)")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def shown(default: object) -> str:
    """A default as the docs write it."""
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, float):
        return f"{default:g}"
    return str(default)


def settings_rows() -> list[tuple[str, str]]:
    """(variable, default cell) of each row of docs/settings.md's table; a row naming two
    variables (`A` / `B`) gives two, with the default cell split the same way (or one default
    for both)."""
    rows = []
    for line in (ROOT / "docs" / "settings.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        names = VARIABLE.findall(cells[0]) if line.startswith("|") else []
        if not names:
            continue
        defaults = cells[1].split(" / ")
        if len(defaults) == 1:  # one default for all of them ("empty: plain HTTP")
            defaults *= len(names)
        assert len(defaults) == len(names), line
        rows += zip(names, defaults, strict=True)
    return rows


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_variable_a_page_names_is_a_setting(page: Path) -> None:
    unknown = {name for name in VARIABLE.findall(page.read_text()) if name.lower() not in FIELDS}
    assert not unknown


def test_every_setting_has_its_row_and_each_row_its_default() -> None:
    rows = settings_rows()
    assert {name.lower() for name, _ in rows} == set(FIELDS)
    for name, cell in rows:
        default = FIELDS[name.lower()]
        given = re.match(r"`([^`]*)`", cell)
        if given:
            assert given[1].removeprefix("./") == shown(default), name
        else:  # "empty", "generated into the data dir", "set by `coalmine up`"
            assert default == "", name


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_a_default_given_in_passing_is_the_real_one(page: Path) -> None:
    """`COALMINE_SHED_LAG_RECORDS` (50,000 …), `COALMINE_X` (default 256) in the prose."""
    for name, number in re.findall(
        r"`COALMINE_([A-Z0-9_]+)`\)? \((?:default )?(\d[\d,_]*(?:\.\d+)?)", page.read_text()
    ):
        assert float(number.replace(",", "").replace("_", "")) == FIELDS[name.lower()], name


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_file_a_page_cites_exists(page: Path) -> None:
    text = page.read_text()
    missing = [
        path
        for path in (match.rstrip(".,:;") for match in CITED_PATH.findall(text))
        if not (ROOT / path).exists()
    ]
    missing += [
        link
        for link in LINK.findall(text)
        if not link.startswith(("http://", "https://")) and not (page.parent / link).exists()
    ]
    assert not missing


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_no_page_keeps_project_bookkeeping_or_points_outside_the_repository(page: Path) -> None:
    text = page.read_text()
    assert not re.search(r"\b[Ii]ssue \d+", text)
    assert "specs/" not in text and "ARCHITECTURE.md" not in text


def test_the_readme_stays_short() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200
