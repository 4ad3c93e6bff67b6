"""`-p` query parameters (queries/params.py): typed, never silently overwritten, and property-based
round trips (hypothesis, derandomized) so any text either parses or is one InputError."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graph.errors import InputError
from queries.params import INT64, parse_params

FAST = settings(max_examples=150, derandomize=True, deadline=None, database=None)
KEYS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True)


def test_ad_hoc_values_are_inferred_and_types_can_be_forced() -> None:
    items = ["n=5", "x=-0.5", "e=1e3", "flag=TRUE", "name=Ana", "code:str=007", "f:float=2", "b:bool=false"]
    assert parse_params(items, infer_types=True) == {
        "n": 5,
        "x": -0.5,
        "e": 1000.0,
        "flag": True,
        "name": "Ana",
        "code": "007",
        "f": 2.0,
        "b": False,
    }
    assert parse_params(["n=5", "t=a=b"], infer_types=False) == {"n": "5", "t": "a=b"}
    for text in ("1_000", "٣", "nan", "inf", "0x10", " 5", ""):
        assert parse_params([f"v={text}"], infer_types=True) == {"v": text}


@pytest.mark.parametrize(
    ("items", "words"),
    [
        (["n=1", "n=2"], "parameter 'n' is given twice"),
        (["n", "m=1"], "is not KEY=VALUE"),
        (["=1"], "is not KEY=VALUE"),
        (["a-b=1"], "is not KEY=VALUE"),
        (["n:int=five"], "'five' is not an integer; pass -p n:str=... to send text"),
        (["n:bool=yes"], "'yes' is not true or false"),
        (["n:float=1,5"], "'1,5' is not a decimal number"),
        (["n:date=2020"], "unknown type 'date'"),
        ([f"n={2**63}"], "is an integer outside the 64-bit range"),
        (["n=1e999"], "is a number too large for a float"),
    ],
)
def test_bad_parameters_are_one_clear_error(items: list[str], words: str) -> None:
    with pytest.raises(InputError, match=re.escape(words)):
        parse_params(items, infer_types=True)


@FAST
@given(key=KEYS, value=st.integers(min_value=INT64[0], max_value=INT64[1]))
def test_integers_round_trip(key: str, value: int) -> None:
    assert parse_params([f"{key}={value}"], infer_types=True) == {key: value}
    assert parse_params([f"{key}:int={value}"], infer_types=False) == {key: value}


@FAST
@given(key=KEYS, value=st.floats(allow_nan=False, allow_infinity=False))
def test_floats_round_trip(key: str, value: float) -> None:
    [(_, back)] = parse_params([f"{key}:float={value!r}"], infer_types=True).items()
    assert back == value and math.copysign(1, back) == math.copysign(1, value)


@FAST
@given(key=KEYS, value=st.booleans())
def test_booleans_round_trip(key: str, value: bool) -> None:
    assert parse_params([f"{key}={str(value).lower()}"], infer_types=True) == {key: value}


@FAST
@given(key=KEYS, text=st.text())
def test_any_text_round_trips_as_str_and_named_queries_keep_text(key: str, text: str) -> None:
    assert parse_params([f"{key}:str={text}"], infer_types=True) == {key: text}
    assert parse_params([f"{key}={text}"], infer_types=False) == {key: text}


@FAST
@given(items=st.lists(st.text(), max_size=4), infer=st.booleans())
def test_any_command_line_parses_or_is_one_input_error(items: list[str], infer: bool) -> None:
    try:
        parsed = parse_params(items, infer_types=infer)
    except InputError as exc:
        assert "\n" not in str(exc).strip()
        return
    assert len(parsed) == len(items)
    for value in parsed.values():
        assert isinstance(value, str | int | float | bool)
        if isinstance(value, float):
            assert math.isfinite(value)
