"""The documentation tells the truth: every page's commands parse, its walkthroughs
print what the page shows, its configs are options, its Python runs, the source lines
the README points at are the ones it names, and the API reference misses no name.

A walkthrough is a ``bash`` block followed by a ``text`` block: the commands run, in
a folder of the page's own, and every line the page shows must come out (numbers
within 2%, so a digit of another PyTorch's rounding does not fail it). Every ``text``
block is a walkthrough's output: a page shows no output that nothing runs.
"""

import importlib
import importlib.util
import inspect
import math
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import gd_lightning
from gd_lightning.cli import main

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", flags=re.DOTALL | re.MULTILINE)
NUMBER = re.compile(r"[-+]?\d[\d,]*\.?\d*(?:e[-+]?\d+)?")
SUBCOMMANDS = ("fit", "validate", "test", "predict")


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def fences(page: Path) -> list[tuple[str, str]]:
    """The page's fenced blocks, in order: (language, text)."""
    return FENCE.findall(page.read_text())


def walkthroughs(page: Path) -> list[tuple[str, str]]:
    """The page's (commands, output shown) pairs."""
    blocks = fences(page)
    return [
        (body, blocks[i + 1][1])
        for i, (language, body) in enumerate(blocks[:-1])
        if language == "bash" and blocks[i + 1][0] == "text"
    ]


def commands(script: str) -> list[list[str]]:
    """Each command of a shell block, as words: continuation lines joined, comments
    dropped, ``&&`` chains split."""
    joined = script.replace("\\\n", " ")
    found = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        command: list[str] = []
        for word in [*words, "&&"]:
            if word == "&&":
                if command:
                    found.append(command)
                command = []
            else:
                command.append(word)
    return found


def same_line(shown: str, printed: str) -> bool:
    """Whether ``printed`` is the line ``shown``: the same words, the numbers within 2%."""
    words = [" ".join(part.split()) for part in NUMBER.split(shown.strip())]
    if words != [" ".join(part.split()) for part in NUMBER.split(printed.strip())]:
        return False
    pairs = zip(NUMBER.findall(shown), NUMBER.findall(printed), strict=True)
    return all(
        math.isclose(float(a.replace(",", "")), float(b.replace(",", "")), rel_tol=0.02)
        for a, b in pairs
    )


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_output_shown_is_a_walkthroughs(page: Path) -> None:
    assert not re.search(r"^ +```", page.read_text(), flags=re.MULTILINE), "an indented block"
    blocks = fences(page)
    for i, (language, body) in enumerate(blocks):
        if language == "text":
            assert i > 0 and blocks[i - 1][0] == "bash", f"output without a command: {body}"


def parsed_commands(page: Path) -> list[list[str]]:
    """The ``gd-lightning`` subcommands of the page's shell blocks outside walkthroughs."""
    run = {body for body, _ in walkthroughs(page)}
    found = []
    for language, body in fences(page):
        if language == "bash" and body not in run:
            found += [words for words in commands(body) if words[0] == "gd-lightning"]
    return found


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_command_shown_parses(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each ``gd-lightning`` command parses (``--print_config``: every option and value
    is one the command takes; a help option prints and exits); each script a page runs
    is in the repository."""
    monkeypatch.chdir(tmp_path)
    for words in parsed_commands(page):
        args = words[1:]
        if args[0] in SUBCOMMANDS:
            helps = any(word == "--help" or word.endswith(".help") for word in args)
            with pytest.raises(SystemExit) as done:
                main([*args] if helps else [*args, "--print_config"])
            assert done.value.code == 0, (words, capsys.readouterr().err)
        else:
            assert main(args) in (0, None), words
    for language, body in fences(page):
        for words in commands(body) if language == "bash" else []:
            scripts = [w for w in words[1:2] if w.endswith(".py")] if words[0] == "python" else []
            for script in scripts:
                assert (ROOT / script).is_file(), script


@pytest.mark.slow
@pytest.mark.parametrize("page", [page for page in PAGES if walkthroughs(page)], ids=page_id)
def test_walkthroughs_print_what_the_page_shows(page: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("GD_LIGHTNING_DEBUG", None)
    for script, shown in walkthroughs(page):
        done = subprocess.run(
            ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=600,
        )  # fmt: skip
        printed = re.split(r"[\r\n]+", done.stdout + done.stderr)
        for line in filter(str.strip, shown.splitlines()):
            assert any(same_line(line, out) for out in printed), (
                f"{page_id(page)} shows {line!r}, which this did not print:\n{script}\n"
                + "\n".join(printed[-40:])
            )


def yaml_blocks() -> list[tuple[str, str]]:
    return [
        (f"{page_id(page)}#{n}", body)
        for page in PAGES
        for n, body in enumerate(b for lang, b in fences(page) if lang == "yaml")
    ]


@pytest.mark.parametrize("name,text", yaml_blocks(), ids=[n for n, _ in yaml_blocks()])
def test_every_config_shown_is_options_the_command_takes(
    name: str, text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("shown.yaml").write_text(text)
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", "shown.yaml", "--print_config"])
    assert done.value.code == 0, name


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in PAGES[1:] if "python" in dict(fences(p))], ids=page_id)
def test_the_pages_python_runs(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's example runs in tests/test_readme.py; the pages' run here."""
    monkeypatch.chdir(tmp_path)
    for language, body in fences(page):
        if language == "python":
            exec(compile(body, page_id(page), "exec"), {})


#: "`Name` in [path, lines a–b](path#La-Lb)" (the README, which links into the
#: repository) or "`Name` in `path`, lines a–b" (a page, the name maybe a link to its
#: API entry, which shows the source): pointers into the source
POINTER = re.compile(
    r"`([\w.]+)`(?:\]\([^)\s]*\))? in (?:\[([\w/.]+), lines (\d+)–(\d+)\]\(\2#L\3-L\4\)"
    r"|`([\w/.]+)`, lines (\d+)–(\d+))"
)


@pytest.mark.parametrize("page", [ROOT / "README.md", ROOT / "docs" / "tutorials.md"], ids=page_id)
def test_the_source_lines_a_page_names_are_those_it_says(page: Path) -> None:
    found = POINTER.findall(page.read_text())
    pointers = [(m[0], *(m[1:4] if m[1] else m[4:7])) for m in found]
    assert len(pointers) >= 4
    for name, path, first, last in pointers:
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        target = module
        for part in name.split("."):
            target = getattr(target, part)
        source, start = inspect.getsourcelines(target)
        assert (start, start + len(source) - 1) == (int(first), int(last)), name
    step = inspect.getsource(gd_lightning.GradientDescent.step)
    assert "p -= lr * p.grad" in step


def test_the_api_reference_documents_every_public_name() -> None:
    documented = {
        line.removeprefix("::: ").strip()
        for page in (ROOT / "docs" / "api").glob("*.md")
        for line in page.read_text().splitlines()
        if line.startswith("::: ")
    }
    public = {f"gd_lightning.{name}" for name in gd_lightning.__all__}
    public |= {f"gd_lightning.cli.{name}" for name in ("GDLightningCLI", "cli", "main")}
    assert public <= documented, sorted(public - documented)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="needs the docs extra")
def test_the_site_builds_strict(tmp_path: Path) -> None:
    """No broken link, anchor or reference (CI builds it too, with the docs extra)."""
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "api" / "models" / "index.html").is_file()
    # every formula and reference is rendered: no reStructuredText role or directive,
    # no mkdocstrings cross-reference left as it was written
    for page in tmp_path.rglob("*.html"):
        # the API pages' "Source code" listings show the code as written, markup and all
        text = re.sub(
            r'<details class="mkdocstrings-source">.*?</details>', "", page.read_text(), flags=re.S
        )
        raw = RAW_MARKUP.search(text)
        assert raw is None, f"{page.relative_to(tmp_path)}: {raw.group(0) if raw else ''}"
    optim = (tmp_path / "api" / "optim" / "index.html").read_text()
    assert "p ← p − lr · ∇ₚL" in optim


#: markup the site and the help must not show as written
RAW_MARKUP = re.compile(r"\.\. math::|:math:`|:class:`|:func:`|:meth:`|\]\[gd_lightning\.")


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["fit", "--help"],
        *(["fit", "--model.help", name] for name in ("LinearRegression", "QuadraticRegression")),
        *(
            ["fit", "--data.help", name]
            for name in ("TabularDataModule", "SpeedDataModule", "NoisyLineDataModule",
                         "CropYieldsDataModule", "ArangeDataModule")
        ),
    ],
)  # fmt: skip
def test_the_help_is_plain_text(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """The command line's help says the docstrings' markup as words: no cross-reference
    or double-backquoted span as written."""
    with pytest.raises(SystemExit) as done:
        main(args)
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "options" in out or "Help for" in out
    assert RAW_MARKUP.search(out) is None and "``" not in out, out
