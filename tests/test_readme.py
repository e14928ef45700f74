"""The README tells the truth: its Python example runs, CI runs its test command."""

import re
from pathlib import Path

import torch

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


def test_every_config_in_the_readme_exists() -> None:
    named = set(re.findall(r"configs/([\w/]+)\.yaml", README))
    assert "fast/line_fit" in named  # the pattern reaches configs/fast/ too
    for name in named:
        assert (ROOT / "configs" / f"{name}.yaml").is_file(), name
