"""Tables in memory (pandas, polars, pyarrow, NumPy) and Parquet files: read by column
name, every value checked, predictions back as tables and as Parquet files."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import QUIET, fit, quiet_trainer, refused_in_one_line

from gd_lightning import LinearRegression, TabularDataModule
from gd_lightning.cli import main
from gd_lightning.errors import InputError

pd = pytest.importorskip("pandas")
pl = pytest.importorskip("polars")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

ROWS = 24
RNG = np.random.default_rng(7)
#: an integer column, a float32 column, a float64 column of many digits, a target
AREA = RNG.integers(30, 200, ROWS).astype(np.int64)
ROOMS = RNG.integers(1, 6, ROWS).astype(np.float32)
AGE = RNG.normal(20, 7, ROWS)
PRICE = 3.0 * AREA + 11.5 * ROOMS - 0.75 * AGE + 40.0
EXACT = np.column_stack([AREA, ROOMS, AGE, PRICE]).astype(np.float64)


def frame() -> "pd.DataFrame":
    """A pandas table with a categorical column and a column of nulls, neither used."""
    return pd.DataFrame(
        {
            "city": pd.Categorical(RNG.choice(["Lyon", "Oslo"], ROWS)),
            "area": AREA,
            "note": pd.array([None] * ROWS, dtype="string"),
            "rooms": ROOMS,
            "age": AGE,
            "price": PRICE,
        }
    )


KINDS = {
    "pandas": frame,
    "polars": lambda: pl.from_pandas(frame()),
    "pyarrow": lambda: pa.Table.from_pandas(frame(), preserve_index=False),
    "numpy": lambda: np.column_stack([AREA, ROOMS, AGE, PRICE]),
    "dict": lambda: {"area": AREA, "rooms": ROOMS, "age": AGE, "price": PRICE},
}
USED = {"features": ["area", "rooms", "age"], "targets": ["price"]}


def module(kind: str, **kwargs) -> TabularDataModule:
    columns = ["area", "rooms", "age", "price"] if kind == "numpy" else None
    return TabularDataModule(table=KINDS[kind](), columns=columns, **{**USED, **kwargs})


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_of_table_is_read_by_name_exactly(kind: str) -> None:
    dm = module(kind)
    x, y = dm.load()
    assert x.dtype == y.dtype == torch.float64
    np.testing.assert_array_equal(torch.cat([x, y], 1).numpy(), EXACT)  # every digit


def test_columns_are_taken_by_name_whatever_their_order() -> None:
    shuffled = frame()[["price", "age", "city", "rooms", "area"]]
    x, y = TabularDataModule(table=shuffled, **USED).load()
    np.testing.assert_array_equal(torch.cat([x, y], 1).numpy(), EXACT)


def test_only_the_used_columns_need_to_be_numbers() -> None:
    # "city" (a category) and "note" (all null) are ignored when not used ...
    TabularDataModule(table=frame(), **USED).load()
    # ... and named, with their first row, when they would be used: as they are read when
    # taken by default (a model's own names may replace them), at once when named
    with pytest.raises(InputError, match=r"row 0 \(counting from 0\), column 'city'.*a category"):
        TabularDataModule(table=frame(), targets=["price"]).load()
    with pytest.raises(InputError, match="name the feature columns with data.features"):
        TabularDataModule(table=frame(), targets=["price"]).load()
    with pytest.raises(InputError, match="'city'.*leave it out of data.features"):
        TabularDataModule(table=frame(), features=["city", "area"], targets=["price"])


@pytest.mark.parametrize("kind", ["pandas", "polars", "pyarrow"])
def test_a_null_in_a_used_column_is_refused_with_its_row(kind: str) -> None:
    table = frame()
    table["age"] = pd.array(list(AGE[:5]) + [None] + list(AGE[6:]), dtype="Float64")
    table = {"pandas": table, "polars": pl.from_pandas(table),
             "pyarrow": pa.Table.from_pandas(table)}[kind]  # fmt: skip
    dm = TabularDataModule(table=table, **USED)
    with pytest.raises(InputError, match=r"row 5 \(counting from 0\), column 'age'.*missing"):
        dm.load()


def test_nan_infinity_and_inexact_integers_are_refused() -> None:
    for bad, words in ((np.nan, "nan is not a finite"), (np.inf, "inf is not a finite")):
        age = AGE.copy()
        age[3] = bad
        table = pa.table({"age": age, "price": PRICE})
        with pytest.raises(InputError, match=rf"row 3 \(counting from 0\), column 'age': {words}"):
            TabularDataModule(table=table, targets=["price"]).load()
    big = np.array([2**53, 2**53 + 1, 5], dtype=np.int64)  # 2**53 + 1 has no float64
    dm = TabularDataModule(table={"id": big, "y": np.ones(3)}, targets=["y"])
    with pytest.raises(InputError, match="row 1 .*9007199254740993 is an integer float64"):
        dm.load()
    exact = TabularDataModule(table={"n": big[[0, 2]], "y": np.ones(2)}, targets=["y"])
    assert exact.load()[0].flatten().tolist() == [2.0**53, 5.0]


def test_a_table_is_neither_guessed_nor_saved() -> None:
    with pytest.raises(InputError, match="needs data.columns"):
        TabularDataModule(table=np.ones((3, 2)), targets=["y"])
    with pytest.raises(InputError, match="leave data.columns out"):
        TabularDataModule(table=frame(), columns=["a"], targets=["price"])
    with pytest.raises(InputError, match="not a table this package reads"):
        TabularDataModule(table=[[1, 2], [3, 4]], targets=["y"])
    with pytest.raises(InputError, match="from the command line, read a file"):
        TabularDataModule(table="houses.csv", targets=["y"])
    indexed = frame().set_index(pd.Index(range(100, 100 + ROWS), name="id"))
    dm = TabularDataModule(table=indexed, targets=["price"], features=["area"])
    assert "id" not in dm.header and "table" not in dm.hparams  # an index is no column


@pytest.mark.parametrize("kind", list(KINDS))
def test_predictions_of_a_table_come_back_as_one_of_its_kind(kind: str) -> None:
    dm = module(kind, standardize_features=True)
    model = LinearRegression(in_features=3, lr=0.1)
    fit(model, dm, max_epochs=3)
    out = quiet_trainer().predict(model, dm)
    assert len(out) == 1
    expected_type = {"pandas": pd.DataFrame, "polars": pl.DataFrame, "pyarrow": pa.Table,
                     "numpy": dict, "dict": dict}[kind]  # fmt: skip
    assert isinstance(out[0], expected_type)
    got = np.asarray(out[0]["price"], dtype=np.float64)
    with torch.no_grad():
        reference = model(torch.from_numpy(EXACT[:, :3]).float()).numpy().flatten()
    np.testing.assert_allclose(got, reference, rtol=1e-6)


def test_a_model_fitted_on_a_frame_predicts_csv_and_parquet_and_back(tmp_path: Path) -> None:
    model = LinearRegression(in_features=3, lr=0.1)
    fit(model, TabularDataModule(table=frame(), **USED), max_epochs=3)
    weight, bias = model.linear.weight.detach().double(), model.linear.bias.detach().double()
    expected = (torch.from_numpy(EXACT[:, :3]) @ weight.T + bias).flatten().numpy()
    # other orders, other columns, no target: read by the model's names
    new = frame()[["age", "city", "rooms", "area"]]
    new.to_csv(tmp_path / "new.csv", index=False)
    new.to_parquet(tmp_path / "new.parquet", row_group_size=10)
    for source in ({"csv_path": str(tmp_path / "new.csv")},
                   {"parquet_path": str(tmp_path / "new.parquet")},
                   {"table": pl.from_pandas(new)}):  # fmt: skip
        out = quiet_trainer().predict(model, TabularDataModule(**source))
        got = np.concatenate([np.asarray(batch, dtype=np.float64).reshape(len(batch), -1)
                              if isinstance(batch, torch.Tensor) else
                              np.asarray(batch["price"], dtype=np.float64).reshape(-1, 1)
                              for batch in out]).flatten()  # fmt: skip
        np.testing.assert_allclose(got, expected, rtol=1e-5, err_msg=str(source))
    # and the other way round: fitted on a CSV file, predicting a DataFrame
    frame()[["price", "age", "rooms", "area"]].to_csv(tmp_path / "fit.csv", index=False)
    other = LinearRegression(in_features=3, lr=0.1)
    fit(other, TabularDataModule(csv_path=str(tmp_path / "fit.csv"), **USED), max_epochs=2)
    out = quiet_trainer().predict(other, TabularDataModule(table=new))
    assert list(out[0].columns) == ["price"] and len(out[0]) == ROWS


def parquet_file(path: Path, table: "pa.Table", row_group_size: int = 10) -> str:
    pq.write_table(table, path, row_group_size=row_group_size)
    return str(path)


def test_parquet_row_groups_are_read_in_order_and_rows_counted_across_them(
    tmp_path: Path,
) -> None:
    table = pa.Table.from_pandas(frame(), preserve_index=False)
    path = parquet_file(tmp_path / "houses.parquet", table)
    assert pq.ParquetFile(path).metadata.num_row_groups == 3
    x, y = TabularDataModule(parquet_path=path, **USED).load()
    np.testing.assert_array_equal(torch.cat([x, y], 1).numpy(), EXACT)
    age = pa.array(list(AGE[:21]) + [None] + list(AGE[22:]))
    holed = parquet_file(tmp_path / "holed.parquet", table.set_column(4, "age", age))
    with pytest.raises(InputError, match=r"holed.parquet, row 22, column 'age'.*missing"):
        TabularDataModule(parquet_path=holed, **USED).load()


def test_a_parquet_column_of_the_wrong_type_and_wrong_files_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text_ages = pa.table({"age": [str(a) for a in AGE], "price": PRICE})
    path = parquet_file(tmp_path / "text.parquet", text_ages)
    with pytest.raises(InputError, match=r"text.parquet, row 1, column 'age': '.*' is text"):
        TabularDataModule(parquet_path=path, targets=["price"]).load()
    (tmp_path / "a.csv").write_text("a,y\n1,2\n")
    fit_on = ["fit", "--model", "LinearRegression", "--model.lr", "0.1", "--data",
              "TabularDataModule", "--data.targets", "[y]"]  # fmt: skip
    refused_in_one_line([*fit_on, "--data.parquet_path", "a.csv"], capsys, "not a Parquet file")
    refused_in_one_line([*fit_on, "--data.csv_path", path], capsys, "--data.parquet_path")


@pytest.mark.slow
def test_parquet_from_the_command_line_to_parquet_with_typed_kept_columns(
    tmp_path: Path, plain_argv: None
) -> None:
    houses = frame().assign(id=[f"h{i:03d}" for i in range(ROWS)], lot=AREA * 2)
    path = parquet_file(tmp_path / "houses.parquet", pa.Table.from_pandas(houses))
    main(["fit", "--data", "TabularDataModule", "--data.parquet_path", path,
          "--data.features", "[area, rooms, age]", "--data.targets", "[price]",
          "--data.standardize_features", "true", "--model", "LinearRegression",
          "--model.lr", "auto", "--trainer.max_epochs", "30", *QUIET])  # fmt: skip
    checkpoint = next(Path("lightning_logs").rglob("*.ckpt"))
    main(["predict", "--ckpt_path", str(checkpoint), "--data.parquet_path", path,
          "--predictions.keep_columns", "[id, lot]", "--predictions.path", "out.parquet",
          *QUIET])  # fmt: skip
    out = pq.read_table("out.parquet")
    assert out.column_names == ["id", "lot", "price"]
    assert [str(t) for t in out.schema.types][1:] == ["int64", "float"]
    assert pa.types.is_string(out.schema.types[0]) or pa.types.is_large_string(out.schema.types[0])
    assert out.column("id").to_pylist() == list(houses["id"])
    assert out.column("lot").to_pylist() == list(houses["lot"])
    main(["predict", "--ckpt_path", str(checkpoint), "--data.parquet_path", path,
          "--predictions.keep_columns", "[id, lot]", "--predictions.path", "out.csv",
          *QUIET])  # fmt: skip
    with pytest.raises(SystemExit) as refused:  # never over the data it reads
        main(["predict", "--ckpt_path", str(checkpoint), "--data.parquet_path", path,
              "--predictions.path", path, *QUIET])  # fmt: skip
    assert refused.value.code == 2 and pq.read_table(path).num_rows == ROWS
    text = Path("out.csv").read_text().splitlines()
    assert text[0] == "id,lot,price" and text[1].startswith(f"h000,{AREA[0] * 2},")
    assert pq.read_table("out.parquet").column("price").to_pylist() == [
        pytest.approx(float(line.split(",")[2]), rel=1e-7) for line in text[1:]
    ]


def test_no_table_library_is_imported_unless_handed_a_table(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a,y\n1,2\n2,4\n")
    code = (
        "import sys\n"
        "from gd_lightning import TabularDataModule, PredictionWriter\n"
        "import gd_lightning.cli\n"
        f"TabularDataModule(csv_path={str(tmp_path / 't.csv')!r}, targets=['y']).load()\n"
        "print(sorted(m for m in ('pandas', 'polars', 'pyarrow') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr[-2000:]


def test_columns_float32_holds_stay_float32_and_others_must_fit_it() -> None:
    narrow = {"a": ROOMS, "b": AREA.astype(np.int16), "y": ROOMS * 2}
    x, y = TabularDataModule(table=narrow, targets=["y"]).load()
    assert x.dtype == y.dtype == torch.float32  # exact in float32, as .npy arrays are
    wide = AGE.copy()
    wide[7] = 1e300  # float64 holds it, float32 would make it infinite
    dm = TabularDataModule(table=pa.table({"age": wide, "y": PRICE}), targets=["y"])
    with pytest.raises(InputError, match=r"row 7 \(counting from 0\), column 'age': 1e\+300"):
        dm.load()
    dm.dtype = torch.float64  # as under --trainer.precision 64-true
    assert dm.load()[0][7, 0].item() == 1e300


def test_pandas_predictions_keep_the_rows_index_labels_batch_by_batch() -> None:
    model = LinearRegression(in_features=3, lr=0.1)
    fit(model, TabularDataModule(table=frame(), **USED), max_epochs=2)
    some = frame()[frame()["area"] > 100]  # index labels with gaps
    batches = quiet_trainer().predict(model, TabularDataModule(table=some, batch_size=3))
    assert len(batches) == -(-len(some) // 3)
    predicted = pd.concat(batches)
    assert list(predicted.index) == list(some.index)  # lines up with the rows predicted
    alone = quiet_trainer().predict(model, TabularDataModule(table=some.loc[[some.index[4]]]))
    assert predicted["price"].iloc[4] == alone[0]["price"].iloc[0]


def test_numpy_column_names_are_counted_and_unique() -> None:
    with pytest.raises(InputError, match=r"shape \(3, 2\) needs data.columns.*got 3 name"):
        TabularDataModule(table=np.ones((3, 2)), columns=["a", "b", "c"])
    with pytest.raises(InputError, match="data.columns names a more than once"):
        TabularDataModule(table=np.ones((3, 2)), columns=["a", "a"])
