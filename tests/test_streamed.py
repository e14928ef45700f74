"""Data read from a file a batch at a time (``memory_map``): a Parquet file streamed by row
groups, every row served once an epoch, and the least-squares reference summed up in the
pass that checks the file, against the reference of the same rows in memory."""

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import QUIET, fit, refused_in_one_line
from strd import digits, load
from test_certified import MIN_DIGITS

from gd_lightning import (
    ConvergenceMonitor,
    LinearRegression,
    QuadraticRegression,
    TabularDataModule,
)
from gd_lightning.cli import main
from gd_lightning.data.reference import OnePass, affine_design
from gd_lightning.data.sampler import RowGroupBatchSampler
from gd_lightning.errors import InputError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

ROWS = 230
RNG = np.random.default_rng(3)
#: badly scaled and offset columns: the reference must keep its digits all the same
X = RNG.normal(size=(ROWS, 3)) * [1.0, 1e3, 1e-3] + [1e4, 5.0, -2.0]
Y = X @ [2.0, 3e-3, 500.0] + 7.0 + RNG.normal(size=ROWS)
USED = {"features": ["a", "b", "c"], "targets": ["y"]}


def parquet(path: Path, rows_per_group: int = 40) -> str:
    """The rows in row groups of ``rows_per_group`` (the last one shorter), with a text
    column the model does not use."""
    table = pa.table({"id": [f"r{i}" for i in range(ROWS)], "a": X[:, 0], "b": X[:, 1],
                      "c": X[:, 2], "y": Y})  # fmt: skip
    pq.write_table(table, path, row_group_size=rows_per_group)
    return str(path)


def streamed(path: str, **kwargs) -> TabularDataModule:
    return TabularDataModule(parquet_path=path, memory_map=True, batch_size=32, **USED, **kwargs)


def test_row_groups_are_shuffled_whole_and_every_row_comes_once() -> None:
    bounds = torch.tensor([0, 40, 80, 120, 130])
    sampler = RowGroupBatchSampler(bounds, batch_size=16, shuffle=True, seed=5)
    order = torch.cat(list(sampler))
    assert sorted(order.tolist()) == list(range(130))
    groups = torch.searchsorted(bounds, order, right=True) - 1
    assert (groups.diff() != 0).sum() == 3  # each group's rows together
    sampler.set_epoch(1)
    assert not torch.equal(torch.cat(list(sampler)), order)  # a new order each epoch
    in_order = RowGroupBatchSampler(bounds, batch_size=16, shuffle=False)
    assert [b.start for b in in_order][:3] == [0, 16, 32]


def test_a_streamed_epoch_serves_each_training_row_once_holding_two_groups(
    tmp_path: Path,
) -> None:
    dm = streamed(parquet(tmp_path / "rows.parquet"), val_fraction=0.2, standardize_features=True)
    dm.setup("fit")
    assert len(dm.train_set) + len(dm.val_set) == ROWS
    xs, ys = [], []
    for x, y in dm.train_dataloader():
        xs.append(x)
        ys.append(y)
        assert len(dm.train_set._groups) <= 2  # memory holds groups, not the file
    x, y = torch.cat(xs), torch.cat(ys)
    rows = dm.train_set.rows.numpy()
    # each value read once, converted once to the batches' dtype
    expected_x = torch.from_numpy(X[rows]).to(x.dtype)
    expected_y = torch.from_numpy(Y[rows, None]).to(y.dtype)
    got, want = torch.argsort(x[:, 0]), torch.argsort(expected_x[:, 0])
    assert torch.equal(x[got], expected_x[want]) and torch.equal(y[got], expected_y[want])
    # to a worker process (of any start method) as a path and row numbers
    copy = pickle.loads(pickle.dumps(dm.train_set))
    assert copy._groups == {} and copy._table is None
    assert all(torch.equal(a, b) for a, b in zip(copy[5:9], dm.train_set[5:9], strict=True))


@pytest.mark.parametrize("precision", ["32-true", "64-true"])
def test_the_one_pass_reference_is_the_reference_of_the_rows_in_memory(
    tmp_path: Path, precision: str
) -> None:
    path = parquet(tmp_path / "rows.parquet")
    kwargs = {"standardize_features": True, "standardize_targets": True, "val_fraction": 0.1}
    references = []
    for data in (streamed(path, **kwargs), TabularDataModule(parquet_path=path, **USED, **kwargs)):
        data.dtype = torch.float64 if precision == "64-true" else torch.float32
        data.setup("fit")
        model = LinearRegression(3, 1, lr=0.1)
        data.share_columns_and_scaling(model)
        references.append((data.least_squares_reference(model), model))
    (one_pass, model), (in_memory, _) = references
    assert one_pass is not None and in_memory is not None
    assert one_pass.rows == in_memory.rows == ROWS - 23
    torch.testing.assert_close(one_pass.solution, in_memory.solution, rtol=1e-12, atol=1e-12)
    # the curvature of the rows as the model reads them: rounded to float32 in a 32-bit fit
    rtol = 1e-10 if precision == "64-true" else 1e-6
    torch.testing.assert_close(one_pass.eigenvalues, in_memory.eigenvalues, rtol=rtol, atol=0)
    if precision != "64-true":
        return  # a 32-bit fit's optimum is that of the rows rounded to float32
    # against an independent reference: NumPy's least squares of the centred rows
    rows = streamed_rows(path, kwargs)
    coefficients = model.coefficients(theta=one_pass.solution)["y"]
    x_train, y_train = X[rows], Y[rows]
    mean = x_train.mean(0)
    design = np.column_stack([x_train - mean, np.ones(len(x_train))])
    solution = np.linalg.lstsq(design, y_train, rcond=None)[0]
    got = [coefficients[name] for name in "abc"]
    np.testing.assert_allclose(got, solution[:3], rtol=1e-9)
    np.testing.assert_allclose(coefficients["bias"], solution[3] - mean @ solution[:3], rtol=1e-9)


def streamed_rows(path: str, kwargs: dict) -> np.ndarray:
    """The file rows a streamed DataModule of these options trains on."""
    data = streamed(path, **kwargs)
    data.setup("fit")
    return data.train_set.rows.numpy()


def test_in_order_a_streamed_fit_is_the_fit_in_memory(tmp_path: Path) -> None:
    path = parquet(tmp_path / "rows.parquet", rows_per_group=50)
    kwargs = {"standardize_features": True, "standardize_targets": True, "shuffle": False}
    weights = []
    in_memory = TabularDataModule(parquet_path=path, batch_size=32, **USED, **kwargs)
    for data in (streamed(path, **kwargs), in_memory):
        model = LinearRegression(3, 1, lr=0.05, init_weight=[[0.0] * 3], init_bias=[0.0])
        fit(model, data, max_epochs=2)
        weights.append(model.linear.weight.detach().clone())
    torch.testing.assert_close(weights[0], weights[1], rtol=0, atol=0)


def test_lr_auto_from_the_command_line_on_a_streamed_file(
    tmp_path: Path, plain_argv: None, capsys: pytest.CaptureFixture[str]
) -> None:
    path = parquet(tmp_path / "rows.parquet")
    main(["fit", "--data", "TabularDataModule", "--data.parquet_path", path,
          "--data.features", "[a, b, c]", "--data.targets", "[y]", "--data.memory_map", "true",
          "--data.batch_size", "64", "--data.standardize_features", "true",
          "--data.standardize_targets", "true", "--model", "LinearRegression",
          "--model.lr", "auto", "--trainer.max_epochs", "2", *QUIET])  # fmt: skip
    out = capsys.readouterr().out
    assert "best possible loss" in out and "learning rate:" in out
    checkpoint = next(Path("lightning_logs").rglob("*.ckpt"))
    main(["predict", "--ckpt_path", str(checkpoint), "--data.parquet_path", path,
          "--data.memory_map", "true", "--data.batch_size", "100",
          "--predictions.keep_columns", "[id]", "--predictions.path", "out.parquet",
          *QUIET])  # fmt: skip
    out = pq.read_table("out.parquet")
    assert out.column("id").to_pylist() == [f"r{i}" for i in range(ROWS)]
    assert out.num_rows == ROWS


def test_streamed_data_is_checked_in_its_pass_and_wrong_uses_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    y = pa.array(list(Y[:150]) + [None] + list(Y[151:]))
    table = pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": y})
    pq.write_table(table, tmp_path / "holed.parquet", row_group_size=40)
    with pytest.raises(InputError, match=r"holed.parquet, row 151, column 'y'.*missing"):
        streamed(str(tmp_path / "holed.parquet")).setup("fit")
    (tmp_path / "rows.csv").write_text("a,b,c,y\n1,2,3,4\n")
    with pytest.raises(InputError, match="write the table to Parquet to stream it"):
        TabularDataModule(csv_path=str(tmp_path / "rows.csv"), memory_map=True, batch_size=2)
    path = parquet(tmp_path / "rows.parquet")
    refused_in_one_line(
        ["fit", "--model", "QuadraticRegression", "--model.lr", "auto", "--data",
         "TabularDataModule", "--data.parquet_path", path, "--data.features", "[a]",
         "--data.targets", "[y]", "--data.memory_map", "true", "--data.batch_size", "10",
         "--data.standardize_features", "true"],
        capsys, "must be a LinearRegression",
    )  # fmt: skip


def test_the_fold_takes_any_affine_design_and_no_other() -> None:
    assert affine_design(LinearRegression(2, 1, lr=0.1, bias=False), 2).shape == (3, 2)
    assert affine_design(QuadraticRegression(lr=0.1), 1) is None
    rows = OnePass()
    x, y = torch.from_numpy(X), torch.from_numpy(Y)[:, None]
    rows.add(x[:100], y[:100])
    rows.add(x[100:], y[100:])
    model = LinearRegression(3, 1, lr=0.1, bias=False)
    reference = rows.reference(model, torch.float64)
    expected = np.linalg.lstsq(X, Y, rcond=None)[0]
    np.testing.assert_allclose(reference.solution[:, 0].numpy(), expected, rtol=1e-8)


def test_memory_mapped_npy_files_have_the_reference_too(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", X - X.mean(0))
    np.save(tmp_path / "y.npy", Y)
    data = TabularDataModule(features_path=str(tmp_path / "x.npy"), memory_map=True,
                             targets_path=str(tmp_path / "y.npy"), batch_size=50,
                             standardize_features=True)  # fmt: skip
    model = LinearRegression(3, 1, lr="auto")
    fit(
        model,
        data,
        max_epochs=1,
        precision="64-true",
        callbacks=[ConvergenceMonitor(verbose=False)],
    )
    reference = data.least_squares_reference(model)
    assert reference is not None and reference.rows == ROWS
    expected = np.linalg.lstsq(np.column_stack([X - X.mean(0), np.ones(ROWS)]), Y, rcond=None)[0]
    got = model.coefficients(theta=reference.solution)["y0"]
    np.testing.assert_allclose([got[n] for n in ("x0", "x1", "x2")], expected[:3], rtol=1e-9)


@pytest.mark.parametrize("standardize", [False, True])
def test_a_streamed_certified_problem_keeps_its_certified_digits(
    tmp_path: Path, standardize: bool
) -> None:
    """NIST's Longley (condition number 5e9 raw) streamed in row groups of 5 rows: the
    one-pass reference, folded, gets the certified coefficients to 9 digits or more."""
    x, y, certified, _ = load("Longley")
    names = [f"x{i + 1}" for i in range(x.shape[1])]
    table = pa.table({**dict(zip(names, x.T, strict=True)), "y": y})
    pq.write_table(table, tmp_path / "longley.parquet", row_group_size=5)
    data = TabularDataModule(parquet_path=str(tmp_path / "longley.parquet"), memory_map=True,
                             batch_size=4, features=names, targets=["y"],
                             standardize_features=standardize,
                             standardize_targets=standardize)  # fmt: skip
    data.dtype = torch.float64
    data.setup("fit")
    model = LinearRegression(6, 1, lr=0.1)
    data.share_columns_and_scaling(model)
    reference = data.least_squares_reference(model)
    assert reference is not None and reference.rank == 7
    found = model.coefficients(theta=reference.solution)["y"]
    assert digits(np.array([found[n] for n in [*names, "bias"]]), certified) >= MIN_DIGITS
