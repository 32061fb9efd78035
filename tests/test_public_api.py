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


def test_one_keyspace_list_and_one_entry_id_test() -> None:
    """The store owns the keyspace list and the entry-id shape; views and the CLI take both
    from it (issue 16: they were three separate copies)."""
    import inspect

    import gamstore.store as gs
    from gamstore.cli import inspect as cli_inspect
    from gamstore.store.ids import new_entry_id
    from gamstore.views import listing, rows

    # one definition: the store's registry; the views' layouts and the CLI's choices are it
    assert not hasattr(rows, "KEYSPACES") and not hasattr(cli_inspect, "_KEYSPACES")
    assert list(rows.LAYOUTS) == list(gs.KEYSPACES) == list(gs.REGISTRY)
    assert all(rows.layout_for(ks) is gs.REGISTRY[ks].layout for ks in gs.KEYSPACES)
    for module in (cli_inspect, listing, rows):
        src = inspect.getsource(module)
        assert '"inner", "block"' not in src and "{16}-[0-9a-f]{8}" not in src, module.__name__
    assert gs.is_entry_id(new_entry_id())
    for bad in (
        "",
        "18eab8e5bcaa3fb8-f828973e",
        "18EAB8E5BCAA3FB8-f828973e-e9c66971",
        "18eab8e5bcaa3fb8-f828973e-e9c66971\n",
        "../18eab8e5bcaa3fb8-f828973e-e9c66971",
    ):
        assert not gs.is_entry_id(bad), bad
