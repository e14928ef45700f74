"""Config files bounded before they are parsed: size, binary content, YAML errors, aliases."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import ActionConfigFile, get_loader, set_loader

from gd_lightning.cli.tutorials import config_source
from gd_lightning.errors import InputError

#: the largest config file read: a config is a page of options, not data
CONFIG_MAX_BYTES = 1 << 20
#: the most YAML nodes a config may stand for once its aliases are expanded: a page of
#: options is a few hundred; a "billion laughs" alias bomb is billions
CONFIG_MAX_NODES = 100_000


class ConfigFileOrTutorial(ActionConfigFile):
    """``--config``: a YAML file of options, bounded by `check_config_file` before
    it is parsed, or a ready config by name (``line_fit``; ``gd-lightning tutorials``
    lists them), whichever way the option is spelled (``-cFILE``, ``--conf FILE``)."""

    def __call__(self, parser: Any, cfg: Any, values: Any, option_string: Any = None) -> None:
        source = config_source(str(values))
        check_config_file(Path(source))
        self.apply_config(parser, cfg, self.dest, source)


def check_config_file(path: Path) -> None:
    """Refuse, in one line, a config file that is too large, not text, or not a YAML
    mapping of options that `check_config_text` accepts, before jsonargparse reads
    it."""
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
    root = check_config_text(text, f"config {path}")
    if root is not None and not isinstance(root, yaml.MappingNode):
        first_line = text.strip().splitlines()[0][:60]
        raise InputError(
            f"config {path} is not a YAML mapping of options (it starts {first_line!r}; a data "
            f"file goes to --data.csv_path): pass a config such as configs/crop_yields.yaml"
        )


def check_config_text(text: str, what: str) -> yaml.Node | None:
    """Refuse, in one line naming ``what`` (and the line), YAML text that is too large,
    not valid YAML, holds a key twice in one mapping, a tag other than YAML's plain ones
    (``!!python/object``, ...), or aliases that expand beyond `CONFIG_MAX_NODES`
    nodes; return its node graph (``None`` for no document), composed without expanding
    anything."""
    if len(text) > CONFIG_MAX_BYTES:
        raise InputError(
            f"{what} is {len(text):,} characters, more than the {CONFIG_MAX_BYTES:,} a config "
            f"may have: pass a YAML file of options (fit --print_config writes one)"
        )
    try:
        root = yaml.compose(text, Loader=SAFE_LOADER)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = err.problem or err.context or "not valid YAML"
        raise InputError(f"{what}{where}: {problem} (it is not valid YAML): fix the file") from None
    except yaml.YAMLError as err:
        raise InputError(f"{what} is not valid YAML ({err}): fix the file") from None
    if root is None:
        return None
    if _expanded_nodes(root) > CONFIG_MAX_NODES:
        raise InputError(
            f"{what} uses YAML aliases that expand to more than {CONFIG_MAX_NODES:,} "
            f"values (an alias bomb?): write the options out without aliases"
        )
    for node in _nodes(root):
        line = node.start_mark.line + 1
        if node.tag not in PLAIN_TAGS:
            tag = node.tag.replace(YAML_TAG_PREFIX, "!!")
            tag = tag.split(":")[0] if tag.startswith("!!python") else tag
            raise InputError(
                f"{what}, line {line}: the YAML tag {tag} is not allowed: a config holds "
                f"plain values (numbers, text, lists, mappings); write the value out"
            )
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, _ in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != MERGE_TAG:
                    if key.value in seen:
                        raise InputError(
                            f"{what}, line {key.start_mark.line + 1}: the key {key.value!r} is "
                            f"given twice in one mapping (first on line {seen[key.value]}): "
                            f"keep one of them"
                        )
                    seen[key.value] = key.start_mark.line + 1
    return root


#: PyYAML's safe loader, in C where built with libyaml
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
YAML_TAG_PREFIX = "tag:yaml.org,2002:"
MERGE_TAG = YAML_TAG_PREFIX + "merge"
#: the tags of plain values: what a config may hold
PLAIN_TAGS = frozenset(
    YAML_TAG_PREFIX + name
    for name in ("str", "int", "float", "bool", "null", "seq", "map", "merge", "timestamp")
)


def _nodes(root: yaml.Node) -> Iterator[yaml.Node]:
    """Every node of the YAML graph ``root`` once (an aliased node once, not per alias)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            stack.extend(part for pair in node.value for part in pair)


#: jsonargparse's parser mode for the command line: its YAML loading, every text
#: (config files however given, included files, environment values, option values)
#: checked by `check_config_text` first
PARSER_MODE = "gd_lightning_yaml"


def bounded_yaml(text: str) -> Any:
    """Load ``text`` as jsonargparse's ``yaml`` mode does, after `check_config_text`."""
    check_config_text(text, "a config (or an option's YAML value)")
    return get_loader("yaml")(text)


def register_parser_mode() -> str:
    """Register `PARSER_MODE` with jsonargparse (its public ``set_loader``) and
    return its name, for the command line's parsers."""
    set_loader(PARSER_MODE, bounded_yaml, exceptions=(yaml.YAMLError,))
    return PARSER_MODE


def _expanded_nodes(root: yaml.Node) -> int:
    """How many nodes the YAML graph ``root`` stands for with every alias expanded,
    counted without expanding it (a shared node's count is reused), capped just above
    `CONFIG_MAX_NODES`; an alias inside the node it names counts as the cap."""
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
