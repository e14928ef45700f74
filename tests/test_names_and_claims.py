"""One name, one column; and the default predictions file claimed, never taken.

Column names are compared in Unicode's composed form everywhere (``keep_columns``
too), a header name held twice is refused wherever it is used, a kept cell is copied
as the file holds it, and predicts writing into one folder at once write a file each."""

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import QUIET, quiet_trainer

from gd_lightning import InputError, LinearRegression, PredictionWriter, TabularDataModule
from gd_lightning.callbacks import predictions
from gd_lightning.callbacks.predictions import write_unused
from gd_lightning.cli import cli, main

pytestmark = pytest.mark.usefixtures("plain_argv")

GOOD = "temp,rain,yield\n73,67,56\n91,88,81\n87,134,119\n102,43,22\n69,96,103\n"
FIT = ["fit", "--model", "LinearRegression", "--model.lr", "1e-5", "--data", "TabularDataModule",
       "--data.csv_path", "data.csv", "--data.targets", "[yield]", "--trainer.max_epochs", "1",
       "--trainer.default_root_dir", "runs", "--trainer.logger", "false",
       "--checkpoint.save_last", "true", "--convergence.verbose", "false",
       "--report.print_table", "false", *QUIET]  # fmt: skip
PREDICT = ["predict", "--data", "TabularDataModule", "--data.csv_path", "new.csv",
           "--ckpt_path", "model.ckpt", *QUIET]  # fmt: skip
COMPOSED, DECOMPOSED = "r\u00e9f", "re\u0301f"  # "réf" typed, and as some programs save it


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of a fit of ``GOOD`` (temp, rain -> yield): made once, copied by tests."""
    folder = tmp_path_factory.mktemp("trained")
    old, argv = Path.cwd(), sys.argv
    os.chdir(folder)
    sys.argv = ["gd-lightning"]
    try:
        (folder / "data.csv").write_text(GOOD)
        cli(FIT)
    finally:
        os.chdir(old)
        sys.argv = argv
    return folder / "runs" / "checkpoints" / "last.ckpt"


def refused(args: list[str], words: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Run the command; assert exit 2, one line holding ``words``, nothing written."""
    before = set(Path(".").rglob("*"))
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert exit_info.value.code == 2 and len(lines) == 1, err[-2000:]
    assert lines[0].startswith("gd-lightning: error: ") and words in lines[0], lines[0]
    assert set(Path(".").rglob("*")) == before


def column(path: Path, name: str) -> list[str]:
    """The cells of column ``name`` of ``path``, as the ``csv`` module reads them."""
    with path.open(encoding="utf-8", newline="") as file:
        rows = list(csv.reader(file))
    return [row[rows[0].index(name)] for row in rows[1:]]


# --- one name: compared in composed form, in keep_columns too -----------------------------


def test_keep_columns_composed_and_decomposed_are_one_name(trained, capsys) -> None:
    shutil.copy(trained, "model.ckpt")
    Path("new.csv").write_text(f"{COMPOSED},temp,rain\nA,73,67\n", encoding="utf-8")
    keep = f"[{COMPOSED},{DECOMPOSED}]"
    refused([*PREDICT, "--predictions.keep_columns", keep], "more than once", capsys)


def test_a_decomposed_header_is_kept_under_the_composed_name(trained, capsys) -> None:
    shutil.copy(trained, "model.ckpt")
    Path("new.csv").write_text(f"{DECOMPOSED},temp,rain\nA,73,67\nB,91,88\n", encoding="utf-8")
    main([*PREDICT, "--predictions.keep_columns", f"[{COMPOSED}]"])
    assert "wrote 2 predictions" in capsys.readouterr().out
    assert column(Path("predictions.csv"), COMPOSED) == ["A", "B"]


def test_keep_columns_as_a_lone_string_is_refused_not_spelled_out() -> None:
    with pytest.raises(InputError, match=r"write \['id'\]"):
        PredictionWriter(keep_columns="id")  # type: ignore[arg-type]


# --- one column: a header name held twice is refused where it is used ---------------------

TWICE = {
    "plain": "note,temp,rain,note,yield",
    "spaced": "note,temp,rain, note ,yield",
    "composed and decomposed": f"{COMPOSED},temp,rain,{DECOMPOSED},yield",
}


@pytest.mark.parametrize("header", TWICE.values(), ids=TWICE.keys())
def test_a_name_twice_in_the_header_is_refused_when_kept(header, trained, capsys) -> None:
    shutil.copy(trained, "model.ckpt")
    Path("new.csv").write_text(f"{header}\na,73,67,b,1\n", encoding="utf-8")
    name = header.split(",")[0]
    refused([*PREDICT, "--predictions.keep_columns", f"[{name}]"], "appears 2 times", capsys)


@pytest.mark.parametrize("header", TWICE.values(), ids=TWICE.keys())
@pytest.mark.parametrize("use", ["feature", "target"])
def test_a_name_twice_in_the_header_is_refused_when_read(header, use) -> None:
    Path("data.csv").write_text(f"{header}\n1,73,67,2,1\n", encoding="utf-8")
    name = header.split(",")[0]
    columns = {"features": ["temp", name], "targets": ["yield"]}
    if use == "target":
        columns = {"features": ["temp"], "targets": [name]}
    with pytest.raises(InputError, match="appears 2 times in the header") as info:
        TabularDataModule(csv_path="data.csv", **columns)
    assert "\n" not in str(info.value)


def test_a_name_twice_among_the_columns_a_model_reads_is_refused(trained, capsys) -> None:
    shutil.copy(trained, "model.ckpt")
    Path("new.csv").write_text("temp,rain,temp\n73,67,73\n")
    refused(PREDICT, "'temp' appears 2 times", capsys)


def test_a_name_twice_among_unused_columns_is_left_alone(trained, capsys) -> None:
    shutil.copy(trained, "model.ckpt")
    Path("new.csv").write_text("note,temp,rain,note\na,73,67,b\n")
    main(PREDICT)
    assert "wrote 1 prediction " in capsys.readouterr().out


# --- a kept cell, as the file holds it -----------------------------------------------------

CELLS = ["  007", "007  ", "0012", "", "  ", '"a, ""b"""', '"  x "', '""', "1e3", "-0", "\tt",
         '"two\nlines"', "caf\u00e9", "cafe\u0301", "x  y"]  # fmt: skip


def test_kept_cells_are_copied_as_the_file_holds_them(trained, capsys) -> None:
    shutil.copy(trained, "model.ckpt")
    rows = "".join(f"{cell},{73 + i},67\n" for i, cell in enumerate(CELLS))
    Path("new.csv").write_text(f"id,temp,rain\n{rows}", encoding="utf-8")
    main([*PREDICT, "--predictions.keep_columns", "[id]"])
    assert f"wrote {len(CELLS)} predictions" in capsys.readouterr().out
    held = column(Path("new.csv"), "id")  # quotes decoded, nothing else changed
    assert held[:5] == ["  007", "007  ", "0012", "", "  "] and held[6] == "  x "
    assert column(Path("predictions.csv"), "id") == held


def test_a_quote_after_spaces_opens_a_quoted_cell_as_the_data_reads_it() -> None:
    Path("data.csv").write_text('id,temp,yield\n  "a, b",1,2\n  c,3,4\n')
    data = TabularDataModule(csv_path="data.csv", features=["temp"], targets=["yield"])
    assert data.text_columns(["id"]) == [["a, b"], ["  c"]]


# --- the default name claimed as the file is written ---------------------------------------


def csv_of(header: list[str], rows: list[list[object]]):
    """What `write_unused` takes: a writer of this CSV to a path."""
    return lambda path, overwrite: predictions.write_csv_atomic(
        path, header, rows, overwrite=overwrite
    )


@pytest.fixture
def another_predict_first(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Make another predict write the default file between this one's choice of a name
    and its write: the other's file goes through the same claim, first; its name is
    listed in the list returned."""
    real = predictions.write_csv_atomic
    claimed: list[Path] = []

    def racing(path: Path, header: list[str], rows: list[list[object]], **kwargs: bool) -> Path:
        if not claimed:
            monkeypatch.setattr(predictions, "write_csv_atomic", real)
            claimed.append(
                write_unused(path.with_name("predictions.csv"), csv_of(["other"], [[1]]))
            )
            monkeypatch.setattr(predictions, "write_csv_atomic", racing)
        return real(path, header, rows, **kwargs)

    monkeypatch.setattr(predictions, "write_csv_atomic", racing)
    return claimed


def test_a_predict_claims_the_next_name_when_another_took_its_own(
    trained, capsys, another_predict_first
) -> None:
    shutil.copy(trained, "model.ckpt")
    Path("new.csv").write_text(GOOD)
    main(PREDICT)
    out = capsys.readouterr().out
    assert another_predict_first == [Path("predictions.csv")]
    assert "wrote 5 predictions to predictions-2.csv" in out and "replaced" not in out
    assert Path("predictions.csv").read_text() == "other\n1\n"  # the other's, whole
    assert column(Path("predictions-2.csv"), "yield")[0]


def test_the_python_api_claims_the_default_name_too(another_predict_first, capsys) -> None:
    Path("data.csv").write_text(GOOD)
    data = TabularDataModule(csv_path="data.csv", targets=["yield"])
    model = LinearRegression(2, lr=1e-5, init_weight=[[1.0, 0.5]], init_bias=[0.0])
    trainer = quiet_trainer(callbacks=[PredictionWriter()], default_root_dir="run")
    trainer.predict(model, datamodule=data)
    assert another_predict_first == [Path("run", "predictions.csv")]
    assert "wrote 5 predictions to run/predictions-2.csv" in capsys.readouterr().out
    assert sorted(p.name for p in Path("run").iterdir()) == ["predictions-2.csv",
                                                            "predictions.csv"]  # fmt: skip


def test_a_link_to_nothing_is_a_name_taken() -> None:
    os.symlink("nowhere.csv", "predictions.csv")
    assert write_unused(Path("predictions.csv"), csv_of(["a"], [[1]])) == Path("predictions-2.csv")
    assert os.readlink("predictions.csv") == "nowhere.csv"


def test_a_claim_that_cannot_be_made_is_not_retried_forever() -> None:
    Path("file").write_text("")
    with pytest.raises(OSError):  # the folder is a file: no name there can be claimed
        write_unused(Path("file", "predictions.csv"), csv_of(["a"], [[1]]))


@pytest.mark.slow
def test_predicts_started_together_write_a_file_each(trained) -> None:
    shutil.copy(trained, "model.ckpt")
    Path("new.csv").write_text("temp,rain\n" + "73,67\n" * 20000)
    command = [sys.executable, "-m", "gd_lightning", *PREDICT]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(2)]  # fmt: skip
    outputs = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], [err[-2000:] for _, err in outputs]
    reported = sorted(out.split("wrote 20000 predictions to ")[1].split()[0] for out, _ in outputs)
    assert reported == ["predictions-2.csv", "predictions.csv"]
    assert Path("predictions.csv").read_text() == Path("predictions-2.csv").read_text()
    assert sorted(p.name for p in Path(".").iterdir()) == [
        "model.ckpt", "new.csv", "predictions-2.csv", "predictions.csv"]  # fmt: skip


def test_a_model_named_in_decomposed_form_fits_the_composed_header() -> None:
    nfc, nfd = "r\u00e9f", "re\u0301f"
    Path("d.csv").write_text(f"{nfc},y\n1,2\n2,4\n3,6\n", encoding="utf-8")
    model = LinearRegression(in_features=1, lr=0.01, feature_names=[nfd], target_names=["y"])
    assert model.feature_names == [nfc]  # one name, one column: kept composed
    data = TabularDataModule(csv_path="d.csv", targets=["y"])
    quiet_trainer(max_epochs=1).fit(model, data)
    assert model.hparams["feature_names"] == [nfc]
