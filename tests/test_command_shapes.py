"""Round four of bad inputs, the command line's shape: a refused command is one line and
exit 2 whatever the arguments look like (none after the subcommand, words standing
alone, no subcommand, a config from the environment), and the line names the part that
is wrong."""

from pathlib import Path

import pytest
from conftest import refused_in_one_line
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gd_lightning.cli.app import command_parts

pytestmark = pytest.mark.usefixtures("plain_argv")


def refused(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one line ``gd-lightning args`` ends with (exit 2, nothing else on stderr)."""
    return refused_in_one_line(args, capsys)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ([], ["no subcommand", "fit"]),
        (["--trainer.max_epochs", "2"], ["no subcommand"]),
        (["tutorial"], ["'tutorial' is not a subcommand", "did you mean tutorials"]),
        (["fitt", "--config", "line_fit"], ["did you mean fit"]),
        (["fit", "line_fit"], ["line_fit: a word on its own", "--config line_fit"]),
        (["fit", "--trainer.max_epochs", "2", "stray"], ["--trainer.max_epochs 2 stray:"]),
        (["predict", "fast/line_fit.yaml"], ["predict --config fast/line_fit.yaml"]),
        (["fit", "--trainer.max_epochs", "-1", "--model.lr", "big"], ["--model.lr big:"]),
        # a config before the subcommand: the unknown option is still named, with its guess
        (
            ["-c", "top.yaml", "fit", "--config", "line_fit", "--lr", "1"],
            ["--lr 1:", "did you mean --model.lr?"],
        ),
    ],
)
def test_each_shape_is_one_line_naming_its_part(args, words, capsys) -> None:
    Path("top.yaml").write_text("fit:\n  trainer:\n    max_epochs: 2\n")
    line = refused(args, capsys)
    for word in words:
        assert word in line, line


def test_a_config_from_the_environment_is_blamed_not_an_option(monkeypatch, capsys) -> None:
    monkeypatch.setenv("JSONARGPARSE_DEFAULT_ENV", "true")
    monkeypatch.setenv("PL_FIT__CONFIG", "crop_yields_5")
    for args in (["fit"], ["fit", "--trainer.max_epochs", "2"]):
        line = refused(args, capsys)
        assert line.startswith("gd-lightning: error: in the environment (PL_FIT__CONFIG)"), line
        assert "--config crop_yields_5" in line  # a tutorial's name: where it works
        assert "--trainer.max_epochs 2:" not in line


def test_an_option_and_its_negative_value_are_one_part() -> None:
    words = ["fit", "line_fit", "--a", "-1", "-2.5e-3", "--b", "x", "-c", "y", "-"]
    assert command_parts(words, 1) == [(1, 2), (2, 5), (5, 7), (7, 10)]


#: words of every shape: subcommands right and wrong, options with good and bad values,
#: words standing alone, separators, numbers, text that is no option; no word gives a
#: model, so no command can start a fit
FIRST = st.sampled_from(["fit", "predict", "validate", "test", "tutorial", "fitt", "line_fit",
                         "", "-", "--", "--trainer.max_epochs", "é"])  # fmt: skip
PART = st.sampled_from([
    ["line_fit"], ["x"], ["é"], ["1"], ["-1"], ["-"], ["--"], ["="], [""], [" "],
    ["--trainer.max_epochs", "2"], ["--trainer.max_epochs", "-1"], ["--trainer.max_epochs"],
    ["--trainer.max_epochs=two"], ["--model.lr", "0.1"], ["--model.lr", "big"], ["--bogus"],
    ["--bogus", "1"], ["--config", "nope"], ["--config"], ["-c", "nope.yaml"],
    ["--data.batch_size", "0"], ["--seed_everything", "x"], ["--trainer.callbacks", "[1"],
])  # fmt: skip


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(first=st.none() | FIRST, parts=st.lists(PART, max_size=4))
def test_every_shape_of_refused_command_is_one_line(first, parts, capsys) -> None:
    args = ([] if first is None else [first]) + [word for part in parts for word in part]
    refused(args, capsys)
