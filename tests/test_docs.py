"""The user documentation agrees with the code.

* every ``gamstore <cmd>`` named in docs/cli.md exists (``gamstore <cmd> --help`` exits 0),
  every command of the CLI has a section there, and each section documents exactly the
  options the command has;
* every path named in the README's "Project layout" list exists, and every module of the
  package is named there (so a newcomer finds every part);
* the README opens with ``make demo`` / ``make test`` and its relative links resolve.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest

from gamstore.cli import main as cli_main

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CLI_DOC = ROOT / "docs" / "cli.md"

_SECTION = re.compile(r"^### `gamstore ([a-z][a-z-]*)`[ \t]*$", re.MULTILINE)
_OPTION = re.compile(r"`(-{1,2}[a-z][a-z0-9-]*)(?:/(--[a-z][a-z0-9-]*))?`")


def cli_sections() -> dict[str, str]:
    """``{command: text of its section}`` from docs/cli.md."""
    text = CLI_DOC.read_text(encoding="utf-8")
    marks = list(_SECTION.finditer(text))
    out: dict[str, str] = {}
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        nxt = text.find("\n## ", m.end())  # a level-2 heading also ends the section
        if 0 <= nxt < end:
            end = nxt
        out[m.group(1)] = text[m.end() : end]
    return out


def documented_options(section: str) -> set[str]:
    """Options named in the section's option table (first column)."""
    opts: set[str] = set()
    for line in section.splitlines():
        if not line.startswith("| `-"):
            continue
        first = line.split("|")[1]
        for m in _OPTION.finditer(first):
            opts.update(o for o in m.groups() if o)
    return opts


def real_options(name: str) -> set[str]:
    cmd = cli_main.commands[name]
    opts: set[str] = set()
    for p in cmd.params:
        if isinstance(p, click.Option):
            opts.update(p.opts)
            opts.update(p.secondary_opts)
    return opts


def named_commands() -> set[str]:
    """Every ``gamstore <word>`` in docs/cli.md that starts a line or a code span."""
    text = CLI_DOC.read_text(encoding="utf-8")
    return set(re.findall(r"(?:^|`)gamstore ([a-z][a-z-]*[a-z])\b", text, re.MULTILINE))


def test_cli_doc_has_a_section_per_command() -> None:
    sections = cli_sections()
    assert set(sections) == set(cli_main.commands), (
        f"docs/cli.md sections {sorted(sections)} vs commands {sorted(cli_main.commands)}"
    )


@pytest.mark.parametrize("name", sorted(cli_sections()))
def test_documented_command_help_exits_0(name: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gamstore", name, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"gamstore {name}" in proc.stdout


def test_every_command_named_in_cli_doc_exists() -> None:
    names = named_commands()
    assert {"ls", "show", "import-gam"} <= names, names
    unknown = sorted(n for n in names if n not in cli_main.commands)
    assert not unknown, f"docs/cli.md names commands that do not exist: {unknown}"


@pytest.mark.parametrize("name", sorted(cli_main.commands))
def test_cli_doc_options_match_the_command(name: str) -> None:
    section = cli_sections().get(name)
    assert section is not None, f"docs/cli.md has no section for `gamstore {name}`"
    documented = documented_options(section)
    real = real_options(name) - {"-h", "--help"}
    assert documented == real, (
        f"gamstore {name}: documented only {sorted(documented - real)}, "
        f"undocumented {sorted(real - documented)}"
    )


def test_option_parser_reads_tables() -> None:
    section = "| option | meaning |\n|---|---|\n| `-o`, `--storage-option` | x |\n| `--plot/--no-plot` | y |\nsee `--nope`\n"
    assert documented_options(section) == {"-o", "--storage-option", "--plot", "--no-plot"}


# ---------------------------------------------------------------- README


def layout_paths() -> list[str]:
    """Paths named in the README's "Project layout" list, relative to the repository root.

    A bullet starts with a path (`` `gamstore/store/` ``); further ``name.py`` mentions in the
    same bullet are files inside that folder.
    """
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Project layout")
    end = text.index("\n## ", start + 1)
    paths: list[str] = []
    bullets = re.split(r"\n(?=\* )", text[start:end])
    for bullet in bullets:
        names = re.findall(r"`([^`\s]+)`", bullet)
        if not bullet.startswith("* ") or not names:
            continue
        head = names[0]
        paths.append(head)
        if head.endswith("/"):
            for name in names[1:]:
                if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*\.(py|ipynb)", name):
                    paths.append(head + name)
    return paths


def test_project_layout_paths_exist() -> None:
    paths = layout_paths()
    assert len(paths) > 40, paths
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, f"README project layout names missing paths: {missing}"


def project_folders() -> set[str]:
    """Top-level folders of the project: those git tracks files in, when this is a checkout.

    Output folders (``make demo`` writes ``gamstore-demo/``, builds write ``dist/``) are
    git-ignored, so the README's two commands in a row must not fail this test.
    """
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        out = ""
    tracked = {f.split("/", 1)[0] + "/" for f in out.split("\0") if "/" in f}
    if tracked:
        return {f for f in tracked if not f.startswith(".")}
    # not a git checkout (an unpacked archive): every folder but known outputs
    folders = {p.name + "/" for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")}
    folders -= {"build/", "dist/", "gamstore.egg-info/", "gamstore-demo/"}
    return {f for f in folders if not f.startswith("tmp")}


def test_project_layout_names_every_module() -> None:
    named = set(layout_paths())
    modules = sorted(
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "gamstore").rglob("*.py")
        # a subpackage's __init__.py is covered by its folder's bullet
        if "__pycache__" not in p.parts
        and not (p.name == "__init__.py" and p.parent.name != "gamstore")
    )
    unnamed = [m for m in modules if m not in named]
    assert not unnamed, f"README project layout does not mention: {unnamed}"
    missing = sorted(f for f in project_folders() if f not in named and f != "gamstore/")
    assert not missing, f"README project layout does not mention folders: {missing}"


def test_readme_starts_with_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    first_block = re.search(r"```[a-z]*\n(.*?)```", text, re.DOTALL)
    assert first_block is not None
    lines = [ln.split("#")[0].strip() for ln in first_block.group(1).splitlines()]
    assert lines[:2] == ["make demo", "make test"]
    assert text.index("```") < text.index("\n## "), "the commands come before any section"


def anchors(doc: Path) -> set[str]:
    """GitHub-style anchors of the headings of a markdown file."""
    out: set[str] = set()
    in_fence = False
    for line in doc.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        if in_fence or not line.startswith("#"):
            continue
        title = line.lstrip("#").strip().lower()
        slug = re.sub(r"[^\w\- ]", "", title).replace(" ", "-")
        out.add(slug)
    return out


DOC_FILES = [README, *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda p: p.name)
def test_relative_links_resolve(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    bad = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://|mailto:", target):
            continue
        file_part, _, anchor = target.partition("#")
        path = (doc.parent / file_part).resolve() if file_part else doc
        if not path.exists():
            bad.append(target)
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            bad.append(target)
    assert not bad, f"{doc.name}: broken links {bad}"


def test_anchor_slugs() -> None:
    doc = README
    assert "1-fitter-authors-gamstorewarmstart" in anchors(doc)
    assert "3-analysts-inspecting-past-fits-jupyter-cli" in anchors(doc)


def test_performance_commands_are_the_ones_in_benchmarks() -> None:
    # numbers in the README's performance table are quoted with the command that made them
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Performance")
    table = text[start : text.index("\n## ", start + 1)]
    bench = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    commands = [
        m.group(1) for m in re.finditer(r"\| `([^`]*bench/[^`]*)` \|$", table, re.MULTILINE)
    ]
    assert len(commands) >= 6, commands
    missing = [c for c in commands if c not in bench]
    assert not missing, f"README quotes commands that BENCHMARKS.md does not show: {missing}"


def shell_invocations(doc: Path) -> list[list[str]]:
    """``gamstore ...`` command lines of the ```bash blocks of a markdown file, as tokens."""
    text = doc.read_text(encoding="utf-8")
    out: list[list[str]] = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.split(" #", 1)[0].strip()
            if line.startswith("gamstore "):
                out.append(shlex.split(line))
    return out


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda p: p.name)
def test_shell_examples_use_real_commands_and_options(doc: Path) -> None:
    bad = []
    for tokens in shell_invocations(doc):
        name = tokens[1]
        if name not in cli_main.commands:
            bad.append(" ".join(tokens))
            continue
        valid = real_options(name) | {"-h", "--help"}
        for tok in tokens[2:]:
            opt = tok.strip("[]").split("=", 1)[0]
            if opt.startswith("-") and opt not in valid:
                bad.append(f"{' '.join(tokens)}: {opt}")
    assert not bad, f"{doc.name}: {bad}"


def test_readme_shell_examples_cover_the_cli() -> None:
    used = {tokens[1] for tokens in shell_invocations(README)}
    assert set(cli_main.commands) - {"demo"} <= used, sorted(set(cli_main.commands) - used)


def _exit_codes(text: str) -> set[int]:
    m = re.search(r"Exit (?:codes|status):?(.*?)(?:\n\s*\n|\Z)", text, re.DOTALL)
    return (
        {int(d) for d in re.findall(r"(?<![\w.-])([0-3])(?!\w|\.\d)", m.group(1))} if m else set()
    )


@pytest.mark.parametrize("name", sorted(cli_main.commands))
def test_cli_doc_exit_codes_match_the_help(name: str) -> None:
    section = cli_sections()[name]
    documented = _exit_codes(section)
    assert 0 in documented, f"gamstore {name}: docs/cli.md states no exit codes"
    helped = _exit_codes(cli_main.commands[name].help or "")
    if "Exit codes" in (cli_main.commands[name].help or ""):
        assert documented == helped, f"gamstore {name}: docs {documented}, --help {helped}"
    else:  # the help names only some codes (or none)
        assert helped <= documented, f"gamstore {name}: docs {documented}, --help {helped}"
