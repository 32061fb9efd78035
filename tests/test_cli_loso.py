"""The ``gamstore loso`` and ``gamstore demo`` commands: bad input exits 2 with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from gamstore.cli import EXIT_USAGE, main
from gamstore.loso import simulate


@pytest.fixture
def csv_path(tmp_path: Path) -> Path:
    df = simulate("poisson", n=200, n_subjects=4, seed=3)
    df["label"] = "a"
    df["one"] = 1
    path = tmp_path / "data.csv"
    df.to_csv(path, index=False)
    return path


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


BASE = ("--y", "y", "--smooth", "x0", "x1", "--family", "poisson")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--subject", "nope"), "--subject: column 'nope' not in the data"),
        (("--subject", "one"), "at least 2 distinct subjects"),
    ],
)
def test_bad_subject(csv_path: Path, extra: tuple[str, ...], message: str) -> None:
    code, out = _run("loso", str(csv_path), *BASE, *extra)
    assert code == EXIT_USAGE
    assert message in out


def test_non_numeric_smooth(csv_path: Path) -> None:
    code, out = _run(
        "loso", str(csv_path), "--y", "y", "--smooth", "x0", "label", "--subject", "subj"
    )
    assert code == EXIT_USAGE
    assert "--smooth: column 'label' must be numeric" in out


def test_missing_smooth_column(csv_path: Path) -> None:
    code, out = _run("loso", str(csv_path), "--y", "y", "--smooth", "x0", "zz", "--subject", "subj")
    assert code == EXIT_USAGE
    assert "--smooth: column 'zz' not in the data" in out


@pytest.mark.parametrize("content", [None, b"", b"\xff\xfe\x00bad\x00\n\x81\x82"])
def test_unreadable_csv(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "broken.csv"
    if content is not None:
        path.write_bytes(content)
    code, out = _run("loso", str(path), *BASE, "--subject", "subj")
    assert code == EXIT_USAGE
    assert "data:" in out and str(path.name) in out


def test_multi_value_smooth_parsing() -> None:
    from gamstore.cli.loso import loso_command

    ctx = loso_command.make_context(
        "loso",
        ["d.csv", "--y", "y", "--smooth", "x0", "x1", "x2", "--subject", "s", "--linear", "z"],
    )
    assert ctx.params["smooth"] == ("x0", "x1", "x2")
    assert ctx.params["linear"] == ("z",)
    assert ctx.params["data"] == "d.csv"


def test_bad_storage_option(csv_path: Path) -> None:
    code, out = _run(
        "loso", str(csv_path), *BASE, "--subject", "subj", "--storage-option", "novalue"
    )
    assert code == EXIT_USAGE
    assert "--storage-option" in out


def test_demo_runs_loso_and_writes_png(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    code, text = _run(
        "demo", "--dir", str(out), "--family", "poisson", "--n", "600", "--subjects", "3"
    )
    assert code == 0, text
    assert "LOSO poisson" in text and "warm/cold: outer iterations" in text
    png = out / "loso_poisson.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any((out / kind).is_dir() for kind in ("block", "artifact", "outer"))


def test_demo_preview_fingerprints_and_stores_a_record(tmp_path: Path) -> None:
    code, text = _run("demo", "--dir", str(tmp_path / "p"), "--preview")
    assert code == 0, text
    assert "hash_array ->" in text and "BlockWarmStartRecord cf-" in text
    assert "lookup hit: True" in " ".join(text.split())  # rich may wrap long lines


def test_loso_command_end_to_end(csv_path: Path, tmp_path: Path) -> None:
    import xarray as xr

    nc, png = tmp_path / "r.nc", tmp_path / "r.png"
    code, text = _run(
        "loso",
        str(csv_path),
        *BASE,
        "--subject",
        "subj",
        "--store",
        str(tmp_path / "store"),
        "--compare-cold",
        "--no-save-folds",
        "--out",
        str(nc),
        "--plot",
        str(png),
    )
    assert code == 0, text
    ds = xr.open_dataset(nc, engine="h5netcdf").load()
    assert list(ds["start"].values) == ["warm", "cold"] and ds.sizes["fold"] == 4
    # off a terminal the table keeps every digit (it used to cut cells to `90802.39…`)
    assert "…" not in text
    for reml in ds["reml"].sel(start="warm").values:
        assert f"{float(reml):.4f}" in text
    assert (ds["status"] == "ok").all()
    assert ds.attrs["save_folds"] == 0 and ds.attrs["family"] == "poisson"
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_weights_column_must_exist_and_be_numeric(csv_path: Path) -> None:
    code, out = _run("loso", str(csv_path), *BASE, "--subject", "subj", "--weights", "nope")
    assert code == EXIT_USAGE and "--weights: column 'nope' not in the data" in out
    code, out = _run("loso", str(csv_path), *BASE, "--subject", "subj", "--offset", "label")
    assert code == EXIT_USAGE and "--offset: column 'label' must be numeric" in out


def test_summary_table_keeps_whole_numbers_off_a_terminal() -> None:
    """Large REML values and long warm sources used to be cut to `90802.39…` in a pipe."""
    from gamstore.cli.loso import print_summary
    from gamstore.fit import GAM, s
    from gamstore.loso import run_loso

    df = simulate("poisson", n=180, n_subjects=3, seed=3)
    ds = run_loso(
        df, GAM([s("x0", k=6)], family="poisson"), subject="subj", y="y", compare_cold=True
    )
    ds["reml"] = ds["reml"] * 0 + 90802.391234
    ds["heldout_deviance"] = ds["heldout_deviance"] * 0 + 123456.789
    sources = ["cross-fit block record", "full-data artifact", "outer session"]
    ds["warm_source"][:, 0] = sources
    runner = CliRunner()
    with runner.isolation() as (out, _err, *_):
        print_summary(ds, "LOSO data.csv: poisson, store memory://a-rather-long-store-name")
        text = out.getvalue().decode()
    assert "…" not in text
    assert text.count("90802.3912") == 3 and text.count("123456.789") == 3
    for source in sources:
        assert source in text
