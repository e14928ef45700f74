"""Print a pip constraints file pinning each runtime dependency of pyproject.toml at its
lower bound (``name>=X`` becomes ``name==X``): the oldest versions the package declares.
The ``parquet`` extra's pyarrow, and the table libraries the package promises to read
(pandas and polars, from the test extra), are pinned at their lower bounds too."""

import re
import sys
from pathlib import Path

import tomllib

project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
extras = project["optional-dependencies"]
tables = [r for r in extras["test"] if r.startswith(("pandas", "polars"))]
for requirement in project["dependencies"] + extras["parquet"] + tables:
    match = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*>=\s*([0-9][^,;\s]*).*", requirement)
    if match is None:
        sys.exit(f"no lower bound in {requirement!r}: every runtime dependency declares one")
    print(f"{match.group(1)}=={match.group(3)}")
