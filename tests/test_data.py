"""DataModules: the tutorials' data, shapes, splits, shuffling, and reading files."""

import numpy as np
import pytest
import torch
from conftest import CROP_INPUTS, CROP_TARGETS, fit
from lightning.pytorch.utilities.model_helpers import is_overridden

from gd_lightning import (
    ArangeDataModule,
    CropYieldsDataModule,
    EpochBatchSampler,
    FullBatch,
    InputError,
    LinearRegression,
    NoisyLineDataModule,
    SpeedDataModule,
    TabularDataModule,
)
from gd_lightning.data.mapped import MappedDataset


def rows_of(loader) -> list[list[float]]:
    """Every row of every batch of ``loader``'s features, in order."""
    return [row for x, _ in loader for row in x.tolist()]


@pytest.mark.parametrize(
    ("datamodule", "shape_x", "shape_y"),
    [
        (SpeedDataModule(), (20, 1), (20, 1)),
        (NoisyLineDataModule(), (100, 2), (100, 1)),
        (NoisyLineDataModule(num_points=30, bias_column=False), (30, 1), (30, 1)),
        (CropYieldsDataModule(), (15, 3), (15, 2)),
        (CropYieldsDataModule(num_regions=5), (5, 3), (5, 2)),
        (ArangeDataModule(), (10, 6), (10, 1)),
    ],
    ids=["speed", "line", "line_no_ones", "crops_15", "crops_5", "arange"],
)
def test_shapes_and_feature_counts_known_before_loading(datamodule, shape_x, shape_y) -> None:
    assert (datamodule.in_features, datamodule.out_features) == (shape_x[1], shape_y[1])
    datamodule.setup("fit")
    x, y = datamodule.full_set.tensors
    assert (tuple(x.shape), tuple(y.shape)) == (shape_x, shape_y)
    assert x.dtype == y.dtype == torch.float32


def test_crop_table_is_the_tutorials() -> None:
    x, y = CropYieldsDataModule().load()
    assert np.array_equal(x.numpy(), CROP_INPUTS) and np.array_equal(y.numpy(), CROP_TARGETS)


def test_arange_data_is_tutorial_4s_and_exactly_collinear() -> None:
    x, y = ArangeDataModule().load()
    assert np.array_equal(x.numpy(), np.arange(58, 387, step=5.5, dtype=np.float32).reshape(10, 6))
    design = torch.cat([x, torch.ones(10, 1)], dim=1).double()
    assert torch.linalg.matrix_rank(design).item() == 2


def test_noise_free_line_lies_on_the_line_and_seed_changes_points() -> None:
    x, y = NoisyLineDataModule(noise=0.0, coefficients=(-1.5, 4.0), bias_column=False).load()
    torch.testing.assert_close(y, -1.5 * x + 4.0)
    a, _ = NoisyLineDataModule(seed=1).load()
    b, _ = NoisyLineDataModule(seed=2).load()
    assert not torch.equal(a, b)
    assert torch.equal(a, NoisyLineDataModule(seed=1).load()[0])


def test_speed_data_follows_its_seed() -> None:
    torch.manual_seed(5)
    t = torch.arange(0, 12).float()
    speed = torch.rand(12) * 5 + 0.8 * (t - 7.5) ** 2 + 1
    assert torch.equal(SpeedDataModule(num_points=12, seed=5).load()[1][:, 0], speed)


def test_splits_are_disjoint_complete_ordered_and_seeded() -> None:
    dm = CropYieldsDataModule(val_fraction=0.2, test_fraction=0.2, seed=3)
    dm.setup("fit")
    sizes = [len(dm.train_set), len(dm.val_set), len(dm.test_set)]
    assert sizes == [9, 3, 3]
    rows = [
        tuple(r)
        for part in (dm.train_set, dm.val_set, dm.test_set)
        for r in part.tensors[0].tolist()
    ]
    assert sorted(rows) == sorted(tuple(r) for r in CROP_INPUTS.tolist())  # every row, once
    train_rows = [CROP_INPUTS.tolist().index(r) for r in dm.train_set.tensors[0].tolist()]
    assert train_rows == sorted(train_rows)  # file order kept

    again = CropYieldsDataModule(val_fraction=0.2, test_fraction=0.2, seed=3)
    again.setup("fit")
    assert torch.equal(again.val_set.tensors[0], dm.val_set.tensors[0])
    other = CropYieldsDataModule(val_fraction=0.2, test_fraction=0.2, seed=4)
    other.setup("fit")
    assert not torch.equal(other.val_set.tensors[0], dm.val_set.tensors[0])


def test_no_split_means_all_rows_train_in_order_and_no_eval_loaders() -> None:
    dm = CropYieldsDataModule()
    dm.setup("fit")
    assert torch.equal(dm.train_set.tensors[0], torch.from_numpy(CROP_INPUTS))
    # no split held out, no loader: Lightning skips validation without a warning
    assert not is_overridden("val_dataloader", dm) and not is_overridden("test_dataloader", dm)
    held_out = CropYieldsDataModule(val_fraction=0.2, test_fraction=0.2)
    assert is_overridden("val_dataloader", held_out) and is_overridden("test_dataloader", held_out)


def test_full_batch_is_one_unshuffled_batch() -> None:
    dm = SpeedDataModule(shuffle=True)
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert len(batches) == 1
    assert torch.equal(batches[0][0], dm.full_set.tensors[0])


def test_shuffle_order_is_fixed_by_seed_and_epoch() -> None:
    dm = CropYieldsDataModule(batch_size=4, seed=9)
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert [len(x) for x, _ in loader] == [4, 4, 4, 3]
    epoch0 = rows_of(loader)
    assert epoch0 == rows_of(loader)  # same epoch, same order
    loader.sampler.set_epoch(1)
    epoch1 = rows_of(loader)
    assert epoch1 != epoch0 and sorted(epoch1) == sorted(epoch0)
    expected = torch.randperm(15, generator=torch.Generator().manual_seed(9 + 1))
    assert epoch1 == CROP_INPUTS[expected.numpy()].tolist()


def test_sampler_ignores_global_random_state() -> None:
    sampler = EpochBatchSampler(10, batch_size=3, shuffle=True, seed=1)
    torch.manual_seed(0)
    first = [b.tolist() for b in sampler]
    torch.manual_seed(123)
    assert [b.tolist() for b in sampler] == first


def test_unshuffled_minibatches_keep_file_order() -> None:
    dm = CropYieldsDataModule(batch_size=4, shuffle=False)
    dm.setup("fit")
    assert rows_of(dm.train_dataloader()) == CROP_INPUTS.tolist()


def test_predict_loader_serves_every_row_in_order() -> None:
    dm = CropYieldsDataModule(batch_size=4, val_fraction=0.2)
    dm.setup("predict")
    assert rows_of(dm.predict_dataloader()) == CROP_INPUTS.tolist()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size must be a positive"),
        ({"val_fraction": -0.1}, r"val_fraction must be in \[0, 1\)"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "leaves no training rows"),
        ({"num_workers": -1}, "num_workers"),
        ({"num_regions": 16}, "num_regions must be between 1 and 15"),
    ],
)
def test_bad_options_are_refused_at_construction(kwargs, message) -> None:
    with pytest.raises(InputError, match=message):
        CropYieldsDataModule(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_regions": 5, "val_fraction": 0.1}, "holds out 0 row"),
        ({"num_regions": 3, "val_fraction": 0.3, "test_fraction": 0.3}, "holds out 1 row"),
        ({"num_regions": 5, "val_fraction": 0.4, "test_fraction": 0.4}, "only 1 of 5 rows"),
    ],
)
def test_splits_too_small_are_refused(kwargs, message) -> None:
    with pytest.raises(InputError, match=message):
        CropYieldsDataModule(**kwargs).setup("fit")


# --- your own files ---------------------------------------------------------------------


def write(path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_csv_columns_by_name(tmp_path) -> None:
    csv = write(tmp_path / "d.csv", "id,a,b,y\n1,1.5,2,10\n2,3,-4,20\n3,5,6e1,30\n")
    dm = TabularDataModule(csv_path=csv, features=["b", "a"], targets=["y"])
    assert dm.feature_names == ["b", "a"] and (dm.in_features, dm.out_features) == (2, 1)
    x, y = dm.load()
    assert x.tolist() == [[2, 1.5], [-4, 3], [60, 5]] and y.tolist() == [[10], [20], [30]]
    default = TabularDataModule(csv_path=csv, targets=["y"])
    assert default.feature_names == ["id", "a", "b"]


def test_csv_with_quotes_blank_lines_and_spaces(tmp_path) -> None:
    csv = write(tmp_path / "d.csv", 'a, "b"\n"1", 2\n\n3,4\n')
    x, y = TabularDataModule(csv_path=csv, targets=["b"]).load()
    assert x.tolist() == [[1], [3]] and y.tolist() == [[2], [4]]


def test_npy_pair_one_and_two_dimensional(tmp_path) -> None:
    np.save(tmp_path / "x.npy", np.arange(12, dtype=np.float64).reshape(6, 2))
    np.save(tmp_path / "y.npy", np.arange(6, dtype=np.int64))
    dm = TabularDataModule(
        features_path=str(tmp_path / "x.npy"),
        targets_path=str(tmp_path / "y.npy"),
        targets=["price"],
    )
    assert dm.feature_names == ["x0", "x1"] and dm.target_names == ["price"]
    x, y = dm.load()  # float64 and int64 files: read with every digit
    assert x.dtype == torch.float64 and x.shape == (6, 2) and y.shape == (6, 1)
    assert y[:, 0].tolist() == list(range(6))
    dm.setup("fit")  # float32 carries these values: held as float32, as the model computes
    assert all(t.dtype == torch.float32 for t in dm.full_set.tensors)


@pytest.mark.parametrize(
    ("content", "kwargs", "message"),
    [
        (None, {"targets": ["y"]}, "no such file"),
        ("", {"targets": ["y"]}, "is empty"),
        ("a,y,b\n1,2,3\n", {"targets": ["y", "z"]}, "column 'z' is not in .*columns are: a, y, b"),
        ("a,a,y\n1,2,3\n", {"targets": ["y"]}, "column 'a' appears 2 times"),
        (
            "a,y\n1,2\n",
            {"targets": ["y"], "features": ["a", "y"]},
            "both as features and as targets",
        ),
        ("y\n1\n", {"targets": ["y"]}, "no feature columns"),
    ],
)
def test_csv_header_mistakes_are_named_at_construction(tmp_path, content, kwargs, message) -> None:
    path = tmp_path / "d.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=message):
        TabularDataModule(csv_path=str(path), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "name the target column.*its columns are: a, y"),
        ({"targets": ["z"]}, "column 'z' is not in .*its columns are: a, y: fit needs"),
    ],
)
def test_data_without_its_targets_is_refused_for_fit_not_predict(tmp_path, kwargs, message) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,y\n1,2\n3,5\n")
    data = TabularDataModule(csv_path=str(path), **kwargs)
    assert not data.labeled and data.feature_names == ["a", "y"]
    with pytest.raises(InputError, match=message):
        data.setup("fit")
    data.setup("predict")
    x, y = data.full_set.tensors
    assert x.tolist() == [[1.0, 2.0], [3.0, 5.0]] and y.shape == (2, 0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a,y\n", "header but no data rows"),
        ("a,y\n1,2\n3,oops\n", "line 3, column 'y': 'oops' is not a number"),
        ("a,y\n1,2\n,4\n", "line 3, column 'a': empty is not a number"),
        ("a,y\n1,2\n3\n", "line 3: 1 cells where the header has 2"),
        ("a,y\n1,2\n3,4,5\n", "line 3: 3 cells where the header has 2"),
        ("a,y\n1,2\nnan,4\n", "feature 'a' is nan in data row 2"),
        ("a,y\n1,2\n3,inf\n", "target 'y' is inf in data row 2"),
    ],
)
def test_csv_value_mistakes_are_named_when_loading(tmp_path, content, message) -> None:
    dm = TabularDataModule(csv_path=write(tmp_path / "d.csv", content), targets=["y"])
    with pytest.raises(InputError, match=message):
        dm.setup("fit")


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        (np.zeros((5, 2)), np.zeros(4), "has 5 rows but .* has 4"),
        (np.zeros((5, 2, 1)), np.zeros(5), "must be 1-D .* or 2-D"),
        (np.array(["a", "b"]), np.zeros(2), "must be numbers"),
    ],
)
def test_npy_mistakes_are_named(tmp_path, x, y, message) -> None:
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    with pytest.raises(InputError, match=message):
        TabularDataModule(
            features_path=str(tmp_path / "x.npy"), targets_path=str(tmp_path / "y.npy")
        )


def test_npy_column_names_must_match(tmp_path) -> None:
    np.save(tmp_path / "x.npy", np.zeros((3, 2)))
    np.save(tmp_path / "y.npy", np.zeros(3))
    with pytest.raises(InputError, match="names 1 column"):
        TabularDataModule(
            features_path=str(tmp_path / "x.npy"),
            targets_path=str(tmp_path / "y.npy"),
            features=["only_one"],
        )


def test_one_source_of_data_not_two_nor_none(tmp_path) -> None:
    with pytest.raises(InputError, match="give one source of data"):
        TabularDataModule()
    with pytest.raises(InputError, match="got data.csv_path and data.features_path"):
        TabularDataModule(csv_path="a.csv", features_path="x.npy", targets_path="y.npy")
    with pytest.raises(InputError, match="got data.csv_path and data.table"):
        TabularDataModule(csv_path="a.csv", table={"a": [1.0]})


def test_worker_processes_serve_the_same_batches() -> None:
    orders = []
    for workers in (0, 1):
        dm = CropYieldsDataModule(batch_size=4, seed=2, num_workers=workers)
        dm.setup("fit")
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(3)
        orders.append(rows_of(loader))
    assert orders[0] == orders[1]


def test_batches_are_gathered_from_one_table_in_one_operation(monkeypatch) -> None:
    dm = CropYieldsDataModule(batch_size=4, shuffle=False)
    dm.setup("fit")
    assert dm.train_set is dm.full_set  # no held-out rows: no copy
    table = dm.full_set.table
    assert dm.full_set.tensors[0].data_ptr() == table.data_ptr()  # features and targets
    assert torch.equal(table, torch.from_numpy(np.hstack([CROP_INPUTS, CROP_TARGETS])))
    x, y = next(iter(dm.predict_dataloader()))
    assert not x.is_contiguous() and x.stride() == (5, 1)  # a view of the gathered block
    assert y.is_contiguous()  # narrow: copied out, as metrics need
    assert torch.equal(y, torch.from_numpy(CROP_TARGETS[:4]))
    gathers = []
    original = torch.Tensor.index_select

    def counted(self, *args):
        gathers.append(self.shape)
        return original(self, *args)

    shuffled = CropYieldsDataModule(batch_size=4, seed=1)
    shuffled.setup("fit")
    monkeypatch.setattr(torch.Tensor, "index_select", counted)
    loader = shuffled.train_dataloader()
    assert isinstance(loader.sampler, EpochBatchSampler)
    order = torch.randperm(15, generator=torch.Generator().manual_seed(1))
    first = next(iter(loader))[0]
    assert torch.equal(first, torch.from_numpy(CROP_INPUTS)[order[:4]])
    assert gathers == [(15, 5)]  # one gather from the table of 3 features and 2 targets


def test_processes_share_each_global_batch_between_them() -> None:
    one = [b.tolist() for b in EpochBatchSampler(11, batch_size=4, shuffle=True, seed=3)]
    shares = [
        [b.tolist() for b in EpochBatchSampler(11, 4, True, seed=3, num_replicas=3, rank=r)]
        for r in range(3)
    ]
    assert all(len(share) == len(one) for share in shares)  # every process steps alike
    for k, batch in enumerate(one):
        assert sum((share[k] for share in shares), []) == batch  # split, in order
    in_order = [list(EpochBatchSampler(5, 4, False, num_replicas=2, rank=r)) for r in range(2)]
    assert in_order == [[slice(0, 2), slice(4, 4)], [slice(2, 4), slice(4, 5)]]


def test_full_batch_is_served_without_a_data_loader() -> None:
    dm = CropYieldsDataModule()
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert isinstance(loader, FullBatch) and len(loader) == 1
    (batch,), again = list(loader), next(iter(loader))
    assert batch[0] is again[0] and torch.equal(batch[0], dm.train_set.tensors[0])
    workers = CropYieldsDataModule(num_workers=1)
    workers.setup("fit")
    assert isinstance(workers.train_dataloader(), torch.utils.data.DataLoader)


def write_npy_pair(folder, rows: int = 300) -> tuple[str, str]:
    generator = np.random.default_rng(1)
    x = generator.normal(size=(rows, 3)).astype(np.float32)
    np.save(folder / "x.npy", x)
    np.save(folder / "y.npy", (x @ np.array([1.0, -2.0, 0.5], dtype=np.float32)) + 3.0)
    return str(folder / "x.npy"), str(folder / "y.npy")


def test_memory_mapped_npy_fits_exactly_as_loaded(tmp_path) -> None:
    x_path, y_path = write_npy_pair(tmp_path)
    states = []
    for memory_map in (False, True):
        torch.manual_seed(0)
        data = TabularDataModule(features_path=x_path, targets_path=y_path, batch_size=32,
                                 val_fraction=0.1, standardize_features=True,
                                 memory_map=memory_map)  # fmt: skip
        model = LinearRegression(3, 1, lr=0.1, optimization="manual")
        fit(model, data, max_epochs=2)
        states.append((model.state_dict(), data.standardization))
    (loaded, loaded_scaling), (mapped, mapped_scaling) = states
    assert isinstance(data.train_set, MappedDataset) and not hasattr(data.train_set, "tensors")
    for name in loaded:
        torch.testing.assert_close(mapped[name], loaded[name], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(mapped_scaling.feature_scale, loaded_scaling.feature_scale)


def test_memory_mapped_batches_reach_worker_processes_as_paths(tmp_path) -> None:
    x_path, y_path = write_npy_pair(tmp_path, rows=50)
    data = TabularDataModule(features_path=x_path, targets_path=y_path, batch_size=8,
                             memory_map=True, num_workers=1, shuffle=False)  # fmt: skip
    data.setup("fit")
    assert data.train_set.maps  # opened here; the copy sent to the worker is not
    rows = torch.cat([x for x, _ in data.train_dataloader()])
    assert torch.equal(rows, torch.from_numpy(np.load(x_path)))


def test_memory_mapped_data_is_checked_block_by_block_and_needs_a_batch_size(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    x_path, y_path = write_npy_pair(tmp_path)
    with pytest.raises(InputError, match="set data.batch_size"):
        TabularDataModule(features_path=x_path, targets_path=y_path, memory_map=True)
    x = np.load(x_path)
    x[250, 1] = np.nan
    np.save(x_path, x)
    monkeypatch.setattr(MappedDataset, "block_rows", 100)  # the NaN sits in the third block
    data = TabularDataModule(features_path=x_path, targets_path=y_path, batch_size=8,
                             memory_map=True)  # fmt: skip
    with pytest.raises(InputError, match="'x1' is nan in data row 251"):
        data.setup("fit")
