"""The API's JSON encoding: what ``clean_json`` then ``JSONResponse`` give, in one call."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from fastapi.responses import JSONResponse

from failwise import Action
from failwise.service._models import FastJSONResponse, clean_json


def test_fast_json_equals_the_cleaned_standard_encoding() -> None:
    value = {
        "a": [1.5, math.nan, math.inf, -math.inf, None, True, "é ≥ \u2028 </script>"],
        "nested": {"x": [[0, 0.25]], "y": (1, 2)},
        "big": 2**53,
    }
    fast = json.loads(bytes(FastJSONResponse(value).body))
    standard = json.loads(bytes(JSONResponse(clean_json(value)).body))
    assert fast == standard
    assert FastJSONResponse(value).media_type == "application/json"


def test_fast_json_encodes_numpy_values_enums_and_sets() -> None:
    body = json.loads(
        bytes(
            FastJSONResponse(
                {
                    "scores": np.array([0.5, np.nan]),
                    "label": np.int64(3),
                    "p": np.float64(0.25),
                    "action": Action.ESCALATE,
                    "set": frozenset({2}),
                }
            ).body
        )
    )
    assert body == {"scores": [0.5, None], "label": 3, "p": 0.25, "action": "escalate", "set": [2]}


def test_fast_json_takes_integers_beyond_64_bits() -> None:
    value = {"context": {"id": 2**80, "ids": [-(2**70)], "x": math.nan, "s": ("a", {2})}}
    body = json.loads(bytes(FastJSONResponse(value).body))
    assert body == {"context": {"id": 2**80, "ids": [-(2**70)], "x": None, "s": ["a", [2]]}}


def test_fast_json_refuses_what_json_cannot_hold() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        FastJSONResponse({"x": object()})
    with pytest.raises(TypeError, match="not JSON serializable"):
        FastJSONResponse({"x": object(), "big": 2**80})
