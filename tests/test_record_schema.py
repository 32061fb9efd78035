"""Record field tables: the parts every stored type writes are byte-identical to the parts
written before the tables existed (tests/fixtures/record_parts), and read back equal."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gamstore import _json
from gamstore.records import RECORD_TYPES

HERE = Path(__file__).resolve().parent / "fixtures" / "record_parts"


def _load_cases() -> Any:
    spec = importlib.util.spec_from_file_location("gamstore_record_parts", HERE / "cases.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CASES = _load_cases()
STORED: dict[str, Any] = json.loads((HERE / "record_parts.json").read_text(encoding="utf-8"))


def test_fixture_covers_every_record_type() -> None:
    assert "fit_artifact" in RECORD_TYPES  # imports the registering modules
    ours = {n for n, c in dict(RECORD_TYPES).items() if c.__module__.startswith("gamstore.")}
    assert {c["record_type"] for c in STORED.values()} == ours
    assert set(STORED) == set(CASES.cases())


@pytest.mark.parametrize("name", sorted(STORED))
def test_parts_are_byte_identical_to_the_stored_fixture(name: str) -> None:
    record = CASES.cases()[name]
    assert CASES.parts_json(record) == STORED[name]


@pytest.mark.parametrize("name", sorted(STORED))
def test_stored_parts_read_back_to_the_same_record(name: str) -> None:
    stored = STORED[name]
    fields = _json.loads(stored["fields"].encode("utf-8"))
    arrays = {
        n: np.frombuffer(
            bytes.fromhex(a["hex"]), dtype="<" + ("f8" if a["dtype"] == "float64" else "i8")
        )
        .reshape(a["shape"])
        .astype(a["dtype"])
        for n, a in stored["arrays"].items()
    }
    cls = RECORD_TYPES[stored["record_type"]]
    back = cls.from_parts(fields, arrays)
    assert back == CASES.cases()[name]
    assert CASES.parts_json(back) == stored
