"""The public API of DESIGN §6 is importable, lazy, and consistent."""

from __future__ import annotations

import subprocess
import sys

import gamstore


def test_version_is_a_string() -> None:
    assert isinstance(gamstore.__version__, str)
    assert gamstore.__version__.count(".") >= 2


def test_every_public_name_resolves() -> None:
    for name in gamstore.__all__:
        assert getattr(gamstore, name) is not None, name


def test_all_matches_the_lazy_table() -> None:
    assert set(gamstore.__all__) == {"__version__", *gamstore._LAZY}


def test_unknown_attribute_raises_attribute_error() -> None:
    try:
        gamstore.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")


def test_import_is_cheap_and_pulls_no_optional_dependency() -> None:
    code = (
        "import sys, gamstore; "
        "heavy = [m for m in ('zarr', 'xarray', 's3fs', 'statsmodels', 'pygam', 'dask', "
        "'matplotlib', 'pickle_is_fine_here_but_not_used') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_cli_version_and_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gamstore", "--version"], capture_output=True, text=True, check=True
    )
    assert gamstore.__version__ in out.stdout
    out = subprocess.run(
        [sys.executable, "-m", "gamstore", "--help"], capture_output=True, text=True, check=True
    )
    assert "Exit codes" in out.stdout
