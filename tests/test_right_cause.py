"""Refusals that name the right cause (issue 29): each line blames what is at fault
(the checkpoint, the class's module, the name given to --config) and says the fix, not
an option or setting that is fine. One line on stderr, exit 2, in-process."""

import importlib
import pickle
import sys
import warnings
from pathlib import Path

import pytest
import torch
import yaml
from conftest import CONFIGS, QUIET, quiet_trainer, refused_in_one_line
from torch.utils.data import DataLoader, TensorDataset

from gd_lightning import LinearRegression, TabularDataModule

pytestmark = pytest.mark.usefixtures("plain_argv")

CSV = "a,b,y\n1,2,3\n2,3,5\n3,5,8\n4,1,5\n"
#: a user's model class, in a module of their own
USER_MODULE = """from gd_lightning import LinearRegression


class MyRegression(LinearRegression):
    pass
"""


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Checkpoints saved from Python after one step each: ``named`` (a CSV's columns),
    ``plain`` (a plain DataLoader: no column names) and ``user`` (a subclass in the
    user's module ``mymodels``, importable only while it was saved)."""
    folder = tmp_path_factory.mktemp("checkpoints")
    (folder / "data.csv").write_text(CSV)
    data = TabularDataModule(csv_path=str(folder / "data.csv"), targets=["y"])
    found: dict[str, Path] = {}
    for name, model in (("named", LinearRegression(2, lr=0.01)),
                        ("plain", LinearRegression(2, lr=0.01))):  # fmt: skip
        trainer = quiet_trainer(max_steps=1)
        if name == "plain":
            x = torch.tensor([[1.0, 2.0], [2.0, 3.0], [3.0, 5.0]])
            loader = DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=3)
            trainer.fit(model, train_dataloaders=loader)
        else:
            trainer.fit(model, datamodule=data)
        found[name] = folder / f"{name}.ckpt"
        trainer.save_checkpoint(found[name])
    (folder / "user").mkdir()
    (folder / "user" / "mymodels.py").write_text(USER_MODULE)
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(folder / "user"))
        user_class = importlib.import_module("mymodels").MyRegression
        trainer = quiet_trainer(max_steps=1)
        trainer.fit(user_class(2, lr=0.01), datamodule=data)
        found["user"] = folder / "user.ckpt"
        trainer.save_checkpoint(found["user"])
    sys.modules.pop("mymodels")  # not importable from here on, as in another folder
    return found


def refused(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the command; assert exit 2, one line on stderr and nothing written; return it."""
    return refused_in_one_line(args, capsys)


def predict(checkpoint: Path, *more: str) -> list[str]:
    Path("d.csv").write_text(CSV)
    return ["predict", "--ckpt_path", str(checkpoint), "--data.csv_path", "d.csv", *more, *QUIET]


def test_a_user_class_that_cannot_be_imported_is_named(
    checkpoints: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    line = refused(predict(checkpoints["user"], "--model", "mymodels.MyRegression"), capsys)
    assert "cannot be imported" in line and "PYTHONPATH" in line, line
    assert "in_features" not in line


def test_a_model_without_column_names_says_so(
    checkpoints: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    line = refused(predict(checkpoints["plain"]), capsys)
    assert "no column names" in line and "--data.targets" in line, line
    assert "load_from_checkpoint" in line


def test_a_missing_copy_of_a_fast_tutorial_keeps_fast(capsys: pytest.CaptureFixture[str]) -> None:
    line = refused(["fit", "--config", "configs/fast/line_fit"], capsys)
    assert "--config fast/line_fit runs the packaged one" in line, line


def test_a_tutorial_name_beside_a_local_yaml_of_that_name_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    edited = yaml.safe_load((CONFIGS / "crop_yields_5.yaml").read_text())
    edited["trainer"]["max_epochs"] = 2
    Path("crop_yields_5.yaml").write_text(yaml.safe_dump(edited))
    line = refused(["fit", "--config", "crop_yields_5", *QUIET], capsys)
    assert "both" in line and "--config crop_yields_5.yaml" in line, line


def test_a_wrongly_typed_saved_setting_blames_the_checkpoint(
    checkpoints: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    saved = torch.load(checkpoints["named"], weights_only=True)
    saved["hyper_parameters"]["feature_names"] = [1, 2]
    torch.save(saved, "typed.ckpt")
    Path("run.yaml").write_text("trainer:\n  max_epochs: 3\n")
    line = refused(predict(Path("typed.ckpt"), "--config", "run.yaml"), capsys)
    assert "saved the model setting feature_names" in line, line
    assert "run.yaml" not in line


def test_saved_settings_that_are_no_mapping_are_said_so(
    checkpoints: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    saved = torch.load(checkpoints["named"], weights_only=True)
    saved["hyper_parameters"] = [1, 2]
    torch.save(saved, "listed.ckpt")
    line = refused(predict(Path("listed.ckpt")), capsys)
    assert "not a mapping" in line and "damaged" in line, line


class Planted:
    """An object a pickle would rebuild by calling a function: a harmless ``print``."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return print, ("planted code ran",)


def test_a_refused_pickle_is_the_only_output(capsys: pytest.CaptureFixture[str]) -> None:
    with open("planted.ckpt", "wb") as file:
        pickle.dump({"state_dict": {}, "extra": Planted()}, file, protocol=5)
    # pytest records warnings rather than printing them: count them instead
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        line = refused(predict(Path("planted.ckpt")), capsys)
    assert "other than tensors" in line, line
    assert not shown, [str(w.message) for w in shown]
