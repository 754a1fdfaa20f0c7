"""SLURM time strings: every form sbatch accepts, refusals, formatting, scripts."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autojob.errors import InputError, MetadataError, MissingFileError
from autojob.timefmt import format_slurm_time, parse_slurm_time, time_from_script

CANONICAL = re.compile(r"^(?:[1-9][0-9]*-)?(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$")
FORMS = [
    "minutes",
    "minutes:seconds",
    "hours:minutes:seconds",
    "days-hours",
    "days-hours:minutes",
    "days-hours:minutes:seconds",
]


def td(days: int = 0, hours: int = 0, minutes: int = 0, seconds: int = 0) -> timedelta:
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


# -- parsing -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90", td(minutes=90)),  # minutes
        ("5", td(minutes=5)),
        ("90:30", td(minutes=90, seconds=30)),  # minutes:seconds
        ("0:59", td(seconds=59)),
        ("1:30:00", td(hours=1, minutes=30)),  # hours:minutes:seconds
        ("00:00:02", td(seconds=2)),
        ("100:00:00", td(hours=100)),  # the leading field may be large
        ("2-12", td(days=2, hours=12)),  # days-hours
        ("2-12:30", td(days=2, hours=12, minutes=30)),  # days-hours:minutes
        ("2-12:30:15", td(days=2, hours=12, minutes=30, seconds=15)),
        ("1-0", td(days=1)),
        ("0-0:0:1", td(seconds=1)),
        ("  01:00:00\n", td(hours=1)),  # surrounding whitespace is ignored
        ("007", td(minutes=7)),
    ],
)
def test_every_form_sbatch_accepts(text: str, expected: timedelta) -> None:
    assert parse_slurm_time(text) == expected


@pytest.mark.parametrize("text", ["UNLIMITED", "unlimited", "INFINITE", "Infinite", "-1", "0"])
def test_unlimited_forms_and_zero_mean_no_limit(text: str) -> None:
    assert parse_slurm_time(text) is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("25:61:00", "minutes must be below 60, not 61"),
        ("1:00:60", "seconds must be below 60, not 60"),
        ("10:75", "seconds must be below 60, not 75"),
        ("1-24", "hours must be below 24 after a day count, not 24"),
        ("1-1:60", "minutes must be below 60, not 60"),
        ("1-1:00:99", "seconds must be below 60, not 99"),
    ],
)
def test_out_of_range_fields_are_refused(text: str, reason: str) -> None:
    with pytest.raises(InputError) as info:
        parse_slurm_time(text, field="--time-limit")
    err = info.value
    assert err.field == "--time-limit"
    assert repr(text) in str(err)
    assert reason in str(err)
    assert err.hint is not None
    for form in FORMS:
        assert f"'{form}'" in err.hint


@pytest.mark.parametrize(
    "text",
    ["", "  ", "abc", "1h", "1:2:3:4", "1-2-3", "-5", "1-", "-1:00", "1.5", "1:", ":30", "١٢"],
)
def test_other_values_are_refused(text: str) -> None:
    with pytest.raises(InputError) as info:
        parse_slurm_time(text)
    assert info.value.field == "time"
    assert repr(text) in str(info.value)
    assert "days-hours:minutes:seconds" in str(info.value)


def test_too_long_a_limit_is_refused_not_overflowed() -> None:
    with pytest.raises(InputError, match="too long"):
        parse_slurm_time("9" * 20)


# -- formatting ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        (td(seconds=2), "00:00:02"),
        (td(hours=1, minutes=30), "01:30:00"),
        (td(hours=23, minutes=59, seconds=59), "23:59:59"),
        (td(days=1), "1-00:00:00"),
        (td(days=2, hours=12, minutes=30, seconds=15), "2-12:30:15"),
        (td(days=400, hours=3), "400-03:00:00"),
        (timedelta(seconds=1, microseconds=1), "00:00:02"),  # never shortened
        (timedelta(0), "00:00:00"),
        (None, "UNLIMITED"),
    ],
)
def test_format_gives_the_canonical_form(limit: timedelta | None, expected: str) -> None:
    assert format_slurm_time(limit) == expected


def test_negative_limits_cannot_be_formatted() -> None:
    with pytest.raises(InputError, match="negative"):
        format_slurm_time(timedelta(seconds=-1))


whole_seconds = st.integers(min_value=1, max_value=999_999 * 86_400).map(
    lambda s: timedelta(seconds=s)
)


@given(whole_seconds)
def test_format_then_parse_round_trips(limit: timedelta) -> None:
    text = format_slurm_time(limit)
    assert CANONICAL.match(text), text
    assert parse_slurm_time(text) == limit


@given(st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=10_000)))
def test_fractions_of_a_second_round_up(limit: timedelta) -> None:
    parsed = parse_slurm_time(format_slurm_time(limit))
    assert parsed is not None
    assert timedelta(0) <= parsed - limit < timedelta(seconds=1)


@given(
    st.integers(0, 10_000),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
    st.sampled_from(FORMS),
)
def test_each_form_means_what_it_says(d: int, h: int, m: int, s: int, form: str) -> None:
    big = d * 24 + h  # a leading field may exceed its range
    text, expected = {
        "minutes": (f"{big}", td(minutes=big)),
        "minutes:seconds": (f"{big}:{s:02d}", td(minutes=big, seconds=s)),
        "hours:minutes:seconds": (f"{big}:{m}:{s}", td(hours=big, minutes=m, seconds=s)),
        "days-hours": (f"{d}-{h}", td(d, h)),
        "days-hours:minutes": (f"{d}-{h}:{m:02d}", td(d, h, m)),
        "days-hours:minutes:seconds": (f"{d}-{h:02d}:{m}:{s:02d}", td(d, h, m, s)),
    }[form]
    assert parse_slurm_time(text) == (expected or None)
    if expected:
        assert parse_slurm_time(format_slurm_time(expected)) == expected


@given(st.integers(0, 1000), st.integers(60, 10_000), st.integers(0, 59))
def test_minutes_out_of_range_are_always_refused(h: int, m: int, s: int) -> None:
    with pytest.raises(InputError, match="minutes must be below 60"):
        parse_slurm_time(f"{h}:{m}:{s}")


# -- job scripts ---------------------------------------------------------------


def script(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "job.sh"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "line",
    [
        "#SBATCH --time=00:00:02",
        "#SBATCH --time 00:00:02",
        "#SBATCH -t 00:00:02",
        "#SBATCH -t00:00:02",
        "#SBATCH -t=00:00:02",  # as python-autojob 0.0.2 read it
        "#SBATCH --job-name=x --time=00:00:02 --mem=1G",
        "#SBATCH --time=00:00:02  # two seconds",
        '#SBATCH --time="00:00:02"',
        "#SBATCH --time=00:00:02\r",
    ],
)
def test_time_lines_in_every_spelling(tmp_path: Path, line: str) -> None:
    path = script(tmp_path, f"#!/bin/bash\n#SBATCH --nodes=1\n{line}\n\nsrun hostname\n")
    assert time_from_script(path) == td(seconds=2)


def test_the_last_time_line_wins(tmp_path: Path) -> None:
    path = script(tmp_path, "#!/bin/sh\n#SBATCH -t 10\n# a comment\n\n#SBATCH --time=1-0\necho\n")
    assert time_from_script(path) == td(days=1)


def test_lines_after_the_first_command_do_not_count(tmp_path: Path) -> None:
    text = "#!/bin/sh\n#SBATCH --time=5\nmodule load x\n#SBATCH --time=99\n"
    assert time_from_script(script(tmp_path, text)) == td(minutes=5)


@pytest.mark.parametrize(
    "text",
    [
        "#!/bin/sh\necho hi\n#SBATCH --time=5\n",  # after a command
        "#!/bin/sh\n  #SBATCH --time=5\n",  # not at the start of the line
        "#!/bin/sh\n# SBATCH --time=5\n",  # commented out
        "#!/bin/sh\n#SBATCH --time-min=5\n#SBATCH --job-name=-t5\n",  # other options
        "#!/bin/sh\n#SBATCH --nodes=1 # --time=5\n",  # in a comment
        "",
    ],
)
def test_scripts_without_a_time_line_give_none(tmp_path: Path, text: str) -> None:
    assert time_from_script(script(tmp_path, text)) is None


def test_an_unlimited_time_line_gives_none(tmp_path: Path) -> None:
    assert time_from_script(script(tmp_path, "#SBATCH --time=UNLIMITED\n")) is None


def test_a_bad_time_line_names_the_file_and_line(tmp_path: Path) -> None:
    path = script(tmp_path, "#!/bin/sh\n#SBATCH --nodes=1\n#SBATCH --time=25:61:00\n")
    with pytest.raises(MetadataError) as info:
        time_from_script(path)
    message = str(info.value)
    assert str(path) in message
    assert "line 3" in message
    assert "'25:61:00'" in message
    assert info.value.hint is not None
    assert "days-hours:minutes:seconds" in info.value.hint


def test_a_missing_script_names_its_path(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError) as info:
        time_from_script(tmp_path / "nope.sh")
    assert str(tmp_path / "nope.sh") in str(info.value)


def test_an_unreadable_script_names_its_path(tmp_path: Path) -> None:
    with pytest.raises(MetadataError) as info:
        time_from_script(tmp_path)  # a directory
    assert not isinstance(info.value, MissingFileError)
    assert str(tmp_path) in str(info.value)


def test_scripts_that_are_not_utf8_still_parse(tmp_path: Path) -> None:
    path = tmp_path / "job.sh"
    path.write_bytes(b"#!/bin/sh\n# caf\xe9\n#SBATCH --time=3\n")
    assert time_from_script(path) == td(minutes=3)
