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
    """What ``--config value`` reads: ``value`` itself when it is a file named exactly so
    (or YAML text given inline), else the ready config of that name (``line_fit``,
    ``fast/line_fit``, with or without ``.yaml``). Refused in one line: a name that is
    neither (listing the names, and the tutorial a path to a missing copy of one
    means), and a tutorial's bare name where the current folder holds ``<name>.yaml``
    too (`check_unambiguous`).

    Examples:
        >>> Path(config_source("fast/line_fit.yaml")).parts[-2:]
        ('fast', 'line_fit.yaml')
    """
    if Path(value).is_file() or _is_inline_yaml(value):
        return value
    configs = tutorial_configs()
    name = value.removesuffix(".yaml").replace("\\", "/")
    if name in configs:
        check_unambiguous(value)
        return str(configs[name])
    meant = tutorial_meant(name)
    hint = f"--config {meant} runs the packaged one; " if meant else ""
    raise InputError(
        f"config {value!r}: no such file, and no tutorial of that name: {hint}"
        f"gd-lightning tutorials lists them ({', '.join(TUTORIALS)}, and fast/<name>)"
    )


def check_unambiguous(name: str) -> None:
    """Refuse, in one line, a tutorial's bare ``name`` (``crop_yields_5``) where the current
    folder holds ``<name>.yaml``: the user may mean either, and running the one they did
    not edit would ignore their file without a word."""
    local = Path(f"{name}.yaml")
    if name.endswith(".yaml") or not local.is_file():
        return
    raise InputError(
        f"--config {name} names both the file {local} in this folder and the tutorial "
        f"{name}: write --config {local} to run your file; to run the tutorial, rename "
        f"your file or run from another folder"
    )


def tutorial_meant(name: str) -> str | None:
    """The tutorial a path to a missing file names by its last parts (``fast/line_fit``
    for ``configs/fast/line_fit``, keeping the ``fast/``), or ``None``.

    Examples:
        >>> tutorial_meant("configs/fast/line_fit"), tutorial_meant("configs/line_fit")
        ('fast/line_fit', 'line_fit')
    """
    parts = Path(name).parts
    configs = tutorial_configs()
    return next(
        (tail for tail in ("/".join(parts[-2:]), "/".join(parts[-1:])) if tail in configs), None
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
