"""The tutorials' ready configs by name: ``--config line_fit`` from any folder, and the
list ``gd-lightning tutorials`` prints. They travel in the package as
``gd_lightning.configs`` (the repository's ``configs/`` folder)."""

from importlib.resources import files
from pathlib import Path

from gd_lightning.errors import InputError

#: the package holding the configs, and the folder of their quick versions
CONFIGS_PACKAGE = "gd_lightning.configs"
FAST = "fast"
#: the tutorials in their order
TUTORIALS = ("quadratic_speed", "line_fit", "crop_yields", "linear_arange", "crop_yields_5")


def tutorial_configs() -> dict[str, Path]:
    """Every ready config by name: the five tutorials, then ``fast/<name>`` for each.

    Examples:
        >>> list(tutorial_configs())[:2], list(tutorial_configs())[5]
        (['quadratic_speed', 'line_fit'], 'fast/quadratic_speed')
    """
    folder = Path(str(files(CONFIGS_PACKAGE)))
    names = [*TUTORIALS, *(f"{FAST}/{name}" for name in TUTORIALS)]
    return {name: folder / f"{name}.yaml" for name in names}


def config_source(value: str) -> str:
    """What ``--config value`` reads: ``value`` itself when it is a file (or YAML text
    given inline), else the ready config of that name (``line_fit``, ``fast/line_fit``,
    with or without ``.yaml``); anything else is refused in one line listing the names.

    Examples:
        >>> Path(config_source("fast/line_fit.yaml")).parts[-2:]
        ('fast', 'line_fit.yaml')
    """
    if Path(value).is_file() or _is_inline_yaml(value):
        return value
    configs = tutorial_configs()
    name = value.removesuffix(".yaml").replace("\\", "/")
    if name in configs:
        return str(configs[name])
    stem = Path(name).name
    hint = f"--config {stem} runs the packaged one; " if stem in configs else ""
    raise InputError(
        f"config {value!r}: no such file, and no tutorial of that name: {hint}"
        f"gd-lightning tutorials lists them ({', '.join(TUTORIALS)}, and fast/<name>)"
    )


def _is_inline_yaml(value: str) -> bool:
    """Whether ``value`` is a config written inline (``'{trainer: {max_epochs: 5}}'``),
    which jsonargparse accepts in place of a file, rather than a name or a path."""
    return "\n" in value or value.lstrip().startswith("{") or ": " in value


def summary(path: Path) -> str:
    """A config's summary: its first line, a comment."""
    first = path.read_text(encoding="utf-8").splitlines()[0] if path.is_file() else ""
    return first.lstrip("#").strip()


def tutorial_list() -> str:
    """What ``gd-lightning tutorials`` prints: each ready config's name and summary."""
    configs = tutorial_configs()
    width = max(map(len, configs))
    lines = [f"{name:<{width}}  {summary(path)}" for name, path in configs.items()]
    lines += [
        "",
        "Run one with: gd-lightning fit --config NAME (a path to a YAML file works too);",
        "see its options with: gd-lightning fit --config NAME --print_config",
    ]
    return "\n".join(lines)
