#!/usr/bin/env bash
# The package as pip users get it: build the wheel, install it into a new virtual
# environment outside the repository, and from an empty folder run a tutorial by name,
# then predict on its checkpoint, checking the numbers printed.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 -m venv "$work/build-env"
"$work/build-env/bin/pip" install --quiet build twine
"$work/build-env/bin/python" -m build --outdir "$work/dist" "$repo"
# the metadata PyPI would show: the README as the description, the license, classifiers
"$work/build-env/bin/twine" check --strict "$work"/dist/*
wheel=("$work"/dist/gd_lightning-*.whl)
python3 -m zipfile -l "${wheel[0]}" > "$work/contents.txt"
grep "gd_lightning/configs/fast/line_fit.yaml" "$work/contents.txt"
grep "dist-info/licenses/LICENSE" "$work/contents.txt"

python3 -m venv "$work/env"
# with the parquet extra (pyarrow), as a user reading Parquet files installs it
"$work/env/bin/pip" install --quiet "${wheel[0]}[parquet]"

mkdir "$work/empty"
cd "$work/empty"
export PATH="$work/env/bin:$PATH"
gd-lightning tutorials > tutorials.txt
grep "^crop_yields_5 " tutorials.txt
gd-lightning fit --config crop_yields_5 --trainer.enable_progress_bar false \
    --trainer.enable_model_summary false > fit.txt
cat fit.txt
checkpoint=(lightning_logs/crop_yields_5/version_0/checkpoints/*.ckpt)
printf 'region,humidity,rainfall,temp\nA,43,67,73\nB,64,88,91\n' > new.csv
gd-lightning predict --ckpt_path "${checkpoint[0]}" --data.csv_path new.csv \
    --predictions.keep_columns '[region]' --predictions.path predictions.csv \
    --trainer.enable_progress_bar false
cat predictions.csv
# the same rows from a Parquet file, the predictions to a Parquet file
python - <<'PY'
import pyarrow as pa, pyarrow.parquet as pq
pq.write_table(pa.table({"humidity": [43, 64], "region": ["A", "B"], "temp": [73.0, 91.0],
                         "rainfall": [67, 88]}), "new.parquet")
PY
gd-lightning predict --ckpt_path "${checkpoint[0]}" --data.parquet_path new.parquet \
    --predictions.keep_columns '[region]' --predictions.path predictions.parquet \
    --trainer.enable_progress_bar false
# the printed parameters are the checkpoint's, and the predictions are x @ w.T + b
python - "${checkpoint[0]}" <<'PY'
import csv, json, pathlib, sys
import torch
checkpoint = pathlib.Path(sys.argv[1])
state = torch.load(checkpoint, weights_only=True)["state_dict"]
weight, bias = state["linear.weight"].double(), state["linear.bias"].double()
printed = pathlib.Path("fit.txt").read_text()
table = json.loads((checkpoint.parent / "parameters.json").read_text())["parameters"]
for target, row in zip(("mangoes", "oranges"), weight.tolist()):
    for name, value in zip(("temp", "rainfall", "humidity"), row):
        assert abs(table[target][name] - value) <= 1e-6 * max(1.0, abs(value)), (target, name)
        assert f"{value:.6g}" in printed, (target, name, value)
rows = list(csv.DictReader(open("predictions.csv")))
assert [row["region"] for row in rows] == ["A", "B"], rows
x = torch.tensor([[73.0, 67, 43], [91, 88, 64]], dtype=torch.float64)
expected = x @ weight.T + bias
for row, values in zip(rows, expected.tolist()):
    got = [float(row["mangoes"]), float(row["oranges"])]
    assert all(abs(g - e) <= 1e-4 * max(1.0, abs(e)) for g, e in zip(got, values)), (got, values)
import pyarrow.parquet as pq
table = pq.read_table("predictions.parquet")
assert table.column_names == ["region", "mangoes", "oranges"], table.schema
assert table.column("region").to_pylist() == ["A", "B"]
import numpy as np
for name in ("mangoes", "oranges"):  # float32 both, the CSV's shortest decimal of each
    assert str(table.schema.field(name).type) == "float", table.schema
    parquet_values = table.column(name).to_numpy()
    assert (parquet_values == np.float32([float(row[name]) for row in rows])).all(), name
print("wheel smoke test: parameters and predictions check out, from CSV and from Parquet")
PY
