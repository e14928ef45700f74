"""Config files bounded before they are parsed: size, binary content, YAML errors, aliases."""

from pathlib import Path
from typing import Any

import yaml
from jsonargparse import ActionConfigFile

from gd_lightning.cli.tutorials import config_source
from gd_lightning.errors import InputError

#: the largest config file read: a config is a page of options, not data
CONFIG_MAX_BYTES = 1 << 20
#: the most YAML nodes a config may stand for once its aliases are expanded: a page of
#: options is a few hundred; a "billion laughs" alias bomb is billions
CONFIG_MAX_NODES = 100_000


class ConfigFileOrTutorial(ActionConfigFile):
    """``--config``: a YAML file of options, bounded by :func:`check_config_file` before
    it is parsed, or a ready config by name (``line_fit``; ``gd-lightning tutorials``
    lists them), whichever way the option is spelled (``-cFILE``, ``--conf FILE``)."""

    def __call__(self, parser: Any, cfg: Any, values: Any, option_string: Any = None) -> None:
        source = config_source(str(values))
        check_config_file(Path(source))
        self.apply_config(parser, cfg, self.dest, source)


def check_config_file(path: Path) -> None:
    """Refuse, in one line, a config file that is too large, not text, not valid YAML
    (naming its line and the problem), not a mapping of options, or whose aliases expand
    beyond :data:`CONFIG_MAX_NODES` nodes, before jsonargparse reads it (which would
    expand an alias bomb until memory runs out)."""
    if not path.is_file():
        return  # jsonargparse names a missing file itself
    try:
        size = path.stat().st_size
        if size > CONFIG_MAX_BYTES:
            raise InputError(
                f"config {path} is {size:,} bytes, more than the {CONFIG_MAX_BYTES:,} a config "
                f"may have: pass a YAML file of options (fit --print_config writes one)"
            )
        raw = path.read_bytes()
    except OSError as err:
        raise InputError(f"cannot read config {path} ({err.strerror or err})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if "\0" in text or not text and raw:
        raise InputError(
            f"config {path} is not a text file (it holds binary data): pass a YAML file of "
            f"options (gd-lightning fit --print_config writes one)"
        )
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = err.problem or err.context or "not valid YAML"
        raise InputError(
            f"config {path}{where}: {problem} (it is not valid YAML): fix the file"
        ) from None
    except yaml.YAMLError as err:
        raise InputError(f"config {path} is not valid YAML ({err}): fix the file") from None
    if root is None:
        return
    if not isinstance(root, yaml.MappingNode):
        shown = text.strip().splitlines()[0][:60]
        raise InputError(
            f"config {path} is not a YAML mapping of options (it starts {shown!r}; a data file "
            f"goes to --data.csv_path): pass a config such as configs/crop_yields.yaml"
        )
    if _expanded_nodes(root) > CONFIG_MAX_NODES:
        raise InputError(
            f"config {path} uses YAML aliases that expand to more than {CONFIG_MAX_NODES:,} "
            f"values (an alias bomb?): write the options out without aliases"
        )


def _expanded_nodes(root: yaml.Node) -> int:
    """How many nodes the YAML graph ``root`` stands for with every alias expanded,
    counted without expanding it (a shared node's count is reused), capped just above
    :data:`CONFIG_MAX_NODES`; an alias inside the node it names counts as the cap."""
    cap = CONFIG_MAX_NODES + 1
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()  # on the current path from the root
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finishing = stack.pop()
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        if finishing:
            open_nodes.discard(id(node))
            sizes[id(node)] = min(cap, 1 + sum(sizes[id(child)] for child in children))
            continue
        if id(node) in sizes:
            continue
        if id(node) in open_nodes:
            return cap
        open_nodes.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in children)
    return sizes[id(root)]
