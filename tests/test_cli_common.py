"""One storage-option parser, one error style and one console policy for every command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from gamstore.cli import EXIT_STORAGE, EXIT_USAGE, main
from gamstore.loso import simulate


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


def test_values_are_typed() -> None:
    from gamstore.cli.common import parse_storage_options

    opts = parse_storage_options(
        [
            "retries=3",
            "anon=false",
            "use_ssl=True",
            "profile=null",
            "timeout=2.5",
            "big=1e3",
            "endpoint_url=http://127.0.0.1:9000",
            'config_kwargs={"connect_timeout": 5}',
            "region_name=eu-west-1",
        ]
    )
    assert opts == {
        "retries": 3,
        "anon": False,
        "use_ssl": True,
        "profile": None,
        "timeout": 2.5,
        "big": 1000.0,
        "endpoint_url": "http://127.0.0.1:9000",
        "config_kwargs": {"connect_timeout": 5},
        "region_name": "eu-west-1",
    }
    assert type(opts["retries"]) is int and opts["anon"] is False


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["novalue"], "expected KEY=VALUE"),
        (["=x"], "expected KEY=VALUE"),
        (["a=1", "a=2"], "'a' given twice"),
        (["config_kwargs={bad"], "not valid JSON"),
    ],
)
def test_bad_items(items: list[str], message: str) -> None:
    from gamstore.cli.common import parse_storage_options

    with pytest.raises(ValueError, match=message):
        parse_storage_options(items)


def test_every_url_command_takes_short_o() -> None:
    with_options = []
    for name, command in main.commands.items():
        for param in command.params:
            if param.name == "storage_option":
                assert isinstance(param, click.Option)
                assert "-o" in param.opts and "--storage-option" in param.opts, name
                with_options.append(name)
    assert {"loso", "import-gam", "ls", "show", "import"} <= set(with_options)


@pytest.fixture
def csv_path(tmp_path: Path) -> Path:
    path = tmp_path / "data.csv"
    simulate("poisson", n=200, n_subjects=4, seed=3).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("flag", ["-o", "--storage-option"])
def test_loso_storage_options_are_typed(
    csv_path: Path, monkeypatch: pytest.MonkeyPatch, flag: str
) -> None:
    """`retries=3` used to stay the string '3' (exit 2) and `anon=false` the truthy 'false'."""
    import gamstore.store

    seen: dict[str, Any] = {}

    def fake_open_store(url: Any, **kw: Any) -> Any:
        seen.update(kw.get("storage_options") or {})
        raise OSError("no network in this test")

    monkeypatch.setattr(gamstore.store, "open_store", fake_open_store)
    code, out = _run(
        "loso",
        str(csv_path),
        "--y",
        "y",
        "--smooth",
        "x0",
        "--subject",
        "subj",
        "--store",
        "s3://bucket/prefix",
        flag,
        "retries=3",
        flag,
        "anon=false",
    )
    assert code == EXIT_STORAGE, out
    assert seen == {"retries": 3, "anon": False}


def test_loso_bad_storage_option_names_the_option(csv_path: Path) -> None:
    code, out = _run(
        "loso",
        str(csv_path),
        "--y",
        "y",
        "--smooth",
        "x0",
        "--subject",
        "subj",
        "-o",
        "a=1",
        "-o",
        "a=2",
    )
    assert code == EXIT_USAGE and "Error: --storage-option: 'a' given twice" in out


def test_import_gam_errors_use_the_common_prefix(tmp_path: Path) -> None:
    code, out = _run("import-gam", str(tmp_path / "missing"), str(tmp_path / "store"))
    assert code == EXIT_USAGE
    assert out.startswith("Error: DIR is not a directory")
    assert not (tmp_path / "store").exists()


def test_demo_options_have_help() -> None:
    code, out = _run("demo", "--help")
    assert code == 0
    text = " ".join(out.split())
    assert "--subjects INTEGER RANGE Simulated subjects, one LOSO fold each" in text
    assert "--seed INTEGER Seed of the simulation" in text


def test_console_off_a_terminal_is_wide() -> None:
    from gamstore.cli.common import PIPE_WIDTH, console

    runner = CliRunner()
    with runner.isolation():
        assert not console().is_terminal
        assert console().width == PIPE_WIDTH


def test_ctrl_c_in_any_command_exits_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """click turns KeyboardInterrupt into "Aborted!" and exit 1, the "problem found" code."""
    import gamstore.cli.loso
    import gamstore.views.source

    def interrupted(*_a: Any, **_k: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(gamstore.views.source, "resolve_store", interrupted)
    code, out = _run("ls", str(tmp_path))
    assert code == 130 and "Interrupted." in out and "Aborted" not in out
    monkeypatch.setattr(gamstore.cli.loso, "read_table", interrupted)
    code, out = _run("loso", "d.csv", "--y", "y", "--smooth", "x", "--subject", "s")
    assert code == 130 and "Interrupted." in out and "Aborted" not in out
