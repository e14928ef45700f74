"""The README tells the truth: its Python example runs, CI runs its test command."""

import re
from pathlib import Path

import torch

from gd_lightning.cli.tutorials import tutorial_configs

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_python_example_runs() -> None:
    (example,) = blocks("python")
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    model, linear = namespace["model"], namespace["linear"]
    assert model.trainer.global_step == 200  # 12 training rows in batches of 3, 50 epochs
    assert isinstance(linear, torch.nn.Linear) and linear.weight.shape == (2, 3)


def test_ci_runs_the_readme_test_command() -> None:
    commands = [line for block in blocks("bash") for line in block.splitlines()]
    (test_command,) = [line for line in commands if "pytest" in line]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci


def test_every_config_in_the_readme_is_a_packaged_tutorial() -> None:
    named = set(re.findall(r"--config ([\w/.]+)", README))
    named |= set(re.findall(r"`((?:fast/)?[a-z_0-9]+)` \|", README)) & set(tutorial_configs())
    assert {"line_fit", "fast/line_fit"} <= named  # commands and the tables' names
    for name in named:
        assert name in tutorial_configs(), name
