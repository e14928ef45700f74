"""Round three of bad inputs, by kind: outputs that would replace what the user keeps,
resumes with changed settings, bytes read other than as written, every way a config
reaches the parser, the Python API's argument types, faults (Ctrl+C at start-up, a full
disk, fits started together). Each case is read right or refused in one line, exit 2,
with nothing written; plus a bounded fuzz of options and config files."""

import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import QUIET, cli_in, quiet_trainer, refused_in_one_line
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gd_lightning import (
    CropYieldsDataModule,
    InputError,
    LinearRegression,
    QuadraticRegression,
    TabularDataModule,
)
from gd_lightning.cli import cli, main

pytestmark = pytest.mark.usefixtures("plain_argv")

GOOD = "temp,rain,yield\n73,67,56\n91,88,81\n87,134,119\n102,43,22\n69,96,103\n"
FIT = ["fit", "--model", "LinearRegression", "--model.lr", "1e-5", "--data", "TabularDataModule",
       "--data.csv_path", "data.csv", "--data.targets", "[yield]", "--trainer.max_epochs", "2",
       "--trainer.default_root_dir", "runs", "--trainer.logger", "false",
       "--checkpoint.save_last", "true", "--convergence.verbose", "false",
       "--report.print_table", "false", *QUIET]  # fmt: skip
PREDICT = ["predict", "--data", "TabularDataModule", "--data.csv_path", "data.csv",
           "--ckpt_path", "model.ckpt", *QUIET]  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fit of ``GOOD`` that saved a resumable ``last.ckpt``: made once, copied by tests."""
    folder = tmp_path_factory.mktemp("trained")
    (folder / "data.csv").write_text(GOOD)
    cli_in(folder, FIT)
    return folder / "runs" / "checkpoints" / "last.ckpt"


def npy(array: np.ndarray) -> bytes:
    path = Path("tmp.npy")
    np.save(path, array)
    content = path.read_bytes()
    path.unlink()
    return content


def refused(args: list[str], words: str, capsys: pytest.CaptureFixture[str]) -> str:
    """Run the command; assert exit 2 and one line holding ``words``; return the line."""
    return refused_in_one_line(args, capsys, words)


def write(files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = Path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def fit_csv(*extra: str) -> list[str]:
    return [*FIT, *extra]


def fit_npy(*extra: str) -> list[str]:
    return ["fit", "--model", "LinearRegression", "--model.lr", "1e-3", "--data",
            "TabularDataModule", "--data.features_path", "x.npy", "--data.targets_path", "y.npy",
            "--trainer.max_epochs", "1", "--trainer.default_root_dir", "runs", *QUIET,
            *extra]  # fmt: skip


ROWS = np.arange(12.0).reshape(6, 2)
TARGETS = np.arange(6.0)[:, None]
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n"
    for i in range(10)
)
BIG = "trainer:\n  max_epochs: 1\n" + "#" * (2 << 20) + "\n"

# (name, files, arguments, words the one line must hold)
CASES = [
    # --- bytes read as written, or refused -----------------------------------------------
    ("quote left open in an unused column",
     {"data.csv": "id,temp,yield\n1,2,3\n\"x,4,5\n6,7,8\n9,1,2\n"},
     fit_csv("--data.features", "[temp]"), "a quote opened and never closed"),
    ("quote left open in the first column",
     {"data.csv": "temp,rain,yield\n\"73,67,56\n91,88,81\n"}, fit_csv(),
     "a quote opened and never closed"),
    ("quote left open in the header", {"data.csv": "\"temp,rain,yield\n1,2,3\n"}, fit_csv(),
     "in the header"),
    ("text after a closing quote", {"data.csv": GOOD.replace("91,88", "\"91\"x,88")}, fit_csv(),
     "line 3"),
    ("Arabic-Indic digits", {"data.csv": GOOD.replace("67", "٦٧")}, fit_csv(),
     "'٦٧' is not written with the digits 0-9 alone"),
    ("full-width digits", {"data.csv": GOOD.replace("56", "５６")}, fit_csv(),
     "is not written with the digits 0-9 alone"),
    ("underscores in a number", {"data.csv": GOOD.replace("134", "1_34")}, fit_csv(),
     "'1_34' is not written with the digits 0-9 alone"),
    ("a hexadecimal number", {"data.csv": GOOD.replace("43", "0x2b")}, fit_csv(),
     "'0x2b' is not a number"),
    ("Fortran exponent", {"data.csv": GOOD.replace("88", "8.8d1")}, fit_csv(),
     "'8.8d1' is not a number"),
    ("a blank target", {"data.csv": GOOD.replace("102,43,22", "102,43,")}, fit_csv(),
     "column 'yield': empty is not a number"),
    ("too small for float32 in a CSV", {"data.csv": GOOD.replace("88", "1e-50")}, fit_csv(),
     "1e-50 is too small"),
    ("negative and too small for float32", {"data.csv": GOOD.replace("88", "-3e-46")},
     fit_csv(), "is too small"),
    ("subnormal in float32", {"data.csv": GOOD.replace("88", "1e-40")}, fit_csv(),
     "is too small"),
    ("too large for float32 in a CSV", {"data.csv": GOOD.replace("134", "-4e38")}, fit_csv(),
     "is too large for float32"),
    ("too small for float32 in float64 features",
     {"x.npy": npy(np.where(ROWS == 3, 1e-50, ROWS)), "y.npy": npy(TARGETS)}, fit_npy(),
     "x.npy, row 2, column 2: 1e-50 is too small"),
    ("too small for float32 in float64 targets",
     {"x.npy": npy(ROWS), "y.npy": npy(np.where(TARGETS == 4, 1e-45, TARGETS))}, fit_npy(),
     "y.npy, row 5, column 1"),
    ("too large for float32 in float64 features",
     {"x.npy": npy(np.where(ROWS == 3, 1e39, ROWS)), "y.npy": npy(TARGETS)}, fit_npy(),
     "is too large for float32"),
    ("too small, memory-mapped",
     {"x.npy": npy(np.where(ROWS == 3, 1e-50, ROWS)), "y.npy": npy(TARGETS)},
     fit_npy("--data.memory_map", "true", "--data.batch_size", "2"), "is too small"),
    ("a CSV file named .npy", {"x.npy": "a,b\n1,2\n", "y.npy": npy(TARGETS)}, fit_npy(),
     "x.npy is not a .npy file (it starts 'a,b\\n1,2\\n', not NumPy's header): a CSV"),
    ("an empty file named .npy", {"x.npy": b"", "y.npy": npy(TARGETS)}, fit_npy(),
     "x.npy is not a .npy file"),
    ("values whose squares overflow float32",
     {"x.npy": npy((ROWS + 1) * 1e30), "y.npy": npy(TARGETS * 1e30)},
     fit_npy("--model.lr", "auto"), "beyond what float32 holds"),
    ("targets whose squares overflow float32, standardized",
     {"x.npy": npy((ROWS + 1) * 1e30), "y.npy": npy((TARGETS + 1) * 1e30)},
     fit_npy("--data.standardize_features", "true", "--data.standardize_targets", "true"),
     "in the targets' own units"),
    # --- configs, however they arrive ------------------------------------------------------
    ("a key twice", {"data.csv": GOOD, "c.yaml": "trainer:\n  max_epochs: 1\n  max_epochs: 2\n"},
     fit_csv("--config", "c.yaml"), "line 3: the key 'max_epochs' is given twice"),
    ("a key twice at the top",
     {"data.csv": GOOD, "c.yaml": "seed_everything: 1\nseed_everything: 2\n"},
     fit_csv("--config", "c.yaml"), "the key 'seed_everything' is given twice"),
    ("a python tag",
     {"data.csv": GOOD, "c.yaml": "seed_everything: !!python/object/apply:os.getpid []\n"},
     fit_csv("--config", "c.yaml"), "the YAML tag !!python/object/apply is not allowed"),
    ("a python name tag",
     {"data.csv": GOOD, "c.yaml": "seed_everything: !!python/name:os.system\n"},
     fit_csv("--config", "c.yaml"), "the YAML tag !!python/name is not allowed"),
    ("a local tag", {"data.csv": GOOD, "c.yaml": "seed_everything: !mine 3\n"},
     fit_csv("--config", "c.yaml"), "the YAML tag !mine is not allowed"),
    ("a group given a number", {"data.csv": GOOD, "c.yaml": "trainer: 0\n"},
     fit_csv("--config", "c.yaml"), "trainer is 0 in the config, but it holds trainer.* options"),
    ("a group given null", {"data.csv": GOOD, "c.yaml": "checkpoint: null\n"},
     fit_csv("--config", "c.yaml"), "checkpoint is None in the config"),
    ("an alias bomb, abbreviated option", {"bomb.yaml": BOMB}, ["fit", "--conf", "bomb.yaml"],
     "an alias bomb?"),
    ("an alias bomb, attached short option", {"bomb.yaml": BOMB}, ["fit", "-cbomb.yaml"],
     "an alias bomb?"),
    ("an alias bomb, included by a config",
     {"bomb.yaml": BOMB, "c.yaml": "model: bomb.yaml\n"}, ["fit", "--config", "c.yaml"],
     "an alias bomb?"),
    ("an alias bomb as an option's value", {}, ["fit", "--trainer.callbacks", BOMB],
     "an alias bomb?"),
    ("a 2 MiB config, abbreviated option", {"big.yaml": BIG}, ["fit", "--conf", "big.yaml"],
     "more than the 1,048,576 a config may have"),
    ("a 2 MiB config, included", {"big.yaml": BIG, "c.yaml": "trainer: big.yaml\n"},
     ["fit", "--config", "c.yaml"], "more than the 1,048,576"),
    ("a key twice in an included config",
     {"m.yaml": "class_path: LinearRegression\nclass_path: QuadraticRegression\n",
      "c.yaml": "model: m.yaml\n"}, ["fit", "--config", "c.yaml"],
     "the key 'class_path' is given twice"),
    # --- outputs never replace inputs ----------------------------------------------------
    ("predictions over the data", {"data.csv": GOOD}, [*PREDICT, "--predictions.path", "data.csv"],
     "is the data (data.csv_path), which this predict reads"),
    ("predictions over the data, another spelling", {"data.csv": GOOD},
     [*PREDICT, "--predictions.path", "./data.csv"], "which this predict reads"),
    ("predictions over the checkpoint", {"data.csv": GOOD},
     [*PREDICT, "--predictions.path", "model.ckpt"], "is the checkpoint (ckpt_path)"),
    ("predictions over a config", {"data.csv": GOOD, "p.yaml": "seed_everything: 0\n"},
     [*PREDICT, "--config", "p.yaml", "--predictions.path", "p.yaml"], "is config file 1"),
    ("predictions into a .ckpt name", {"data.csv": GOOD},
     [*PREDICT, "--predictions.path", "other.ckpt"], "a .ckpt file, not a CSV or Parquet"),
    ("predictions into a .npy name", {"data.csv": GOOD},
     [*PREDICT, "--predictions.path", "x.npy"], "names a .npy file"),
    ("a new fit into an earlier run's checkpoints",
     {"data.csv": GOOD, "old/checkpoints/last.ckpt": b"kept"},
     fit_csv("--checkpoint.dirpath", "old/checkpoints"), "holds checkpoints of an earlier run"),
    # --- a resumed fit honours its settings or refuses ----------------------------------------
    ("resumed at another rate", {"data.csv": GOOD},
     fit_csv("--ckpt_path", "model.ckpt", "--model.lr", "1e-4", "--trainer.max_epochs", "4"),
     "model.lr is 0.0001 but the run in model.ckpt was trained with 1e-05"),
    ("resumed with another optimizer", {"data.csv": GOOD},
     fit_csv("--ckpt_path", "model.ckpt", "--model.optimizer", "torch.optim.Adam",
             "--trainer.max_epochs", "4"), "model.optimizer.class is torch.optim.adam.Adam"),
    ("resumed with momentum", {"data.csv": GOOD},
     fit_csv("--ckpt_path", "model.ckpt", "--model.optimizer", "torch.optim.SGD",
             "--model.optimizer.momentum", "0.9", "--trainer.max_epochs", "4"),
     "model.optimizer.momentum is 0.9"),
    ("resumed in manual mode", {"data.csv": GOOD},
     fit_csv("--ckpt_path", "model.ckpt", "--model.optimization", "manual",
             "--trainer.max_epochs", "4"), "model.optimization is manual but the run in"),
    ("resumed with another batch size", {"data.csv": GOOD},
     fit_csv("--ckpt_path", "model.ckpt", "--data.batch_size", "2", "--trainer.max_epochs", "4"),
     "data.batch_size is 2 but the run in model.ckpt was trained with None"),
    ("resumed with another seed", {"data.csv": GOOD},
     fit_csv("--ckpt_path", "model.ckpt", "--data.seed", "3", "--trainer.max_epochs", "4"),
     "data.seed is 3"),
    ("resumed standardized", {"data.csv": GOOD},
     fit_csv("--ckpt_path", "model.ckpt", "--data.standardize_features", "true",
             "--trainer.max_epochs", "4"), "data.standardize_features is true"),
    ("resumed on other data", {"data.csv": GOOD, "other.csv": GOOD.replace("56", "57")},
     fit_csv("--ckpt_path", "model.ckpt", "--data.csv_path", "other.csv",
             "--trainer.max_epochs", "4"), "other.csv is not the data this run started on"),
    # --- trainer counts Lightning does not check --------------------------------------------
    ("no batches per update", {"data.csv": GOOD}, fit_csv("--trainer.accumulate_grad_batches", "0"),
     "trainer.accumulate_grad_batches must be 1 or more"),
    ("no batches per update, manual", {"data.csv": GOOD},
     fit_csv("--model.optimization", "manual", "--trainer.accumulate_grad_batches", "0"),
     "trainer.accumulate_grad_batches must be 1 or more"),
    ("negative batches per update", {"data.csv": GOOD},
     fit_csv("--trainer.accumulate_grad_batches", "-2"), "must be 1 or more"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "files", "args", "words"), CASES, ids=[c[0] for c in CASES])
def test_one_line_exit_2_and_nothing_written(name, files, args, words, trained, capsys) -> None:
    write(files)
    if "model.ckpt" in args:
        shutil.copy(trained, "model.ckpt")
    refused(args, words, capsys)


# the Python API: each argument checked by type, in one line naming it
API_CASES = [
    (lambda: LinearRegression(2.5, 1, lr=0.1), "in_features must be a whole number"),
    (lambda: LinearRegression(True, 1, lr=0.1), "in_features must be a whole number"),
    (lambda: LinearRegression(2, "1", lr=0.1), "out_features must be a whole number"),
    (lambda: LinearRegression(2, 1, lr="fast"), "lr must be a positive finite number or 'auto'"),
    (lambda: QuadraticRegression(lr=0.1, optimization="magic"), "optimization must be"),
    (lambda: CropYieldsDataModule(batch_size=2.5), "batch_size must be a whole number of rows"),
    (lambda: CropYieldsDataModule(batch_size=True), "batch_size must be a whole number"),
    (lambda: CropYieldsDataModule(val_fraction="0.2"), "val_fraction must be a number"),
    (lambda: CropYieldsDataModule(seed=1.5), "seed must be a whole number"),
    (lambda: CropYieldsDataModule(shuffle="yes"), "shuffle must be true or false"),
    (lambda: CropYieldsDataModule(num_workers=0.5), "num_workers must be a whole number"),
    (lambda: TabularDataModule(csv_path="data.csv", targets="yield"),
     "data.targets must be a list of column names, got the string 'yield': write ['yield']"),
    (lambda: TabularDataModule(csv_path="data.csv", features="temp", targets=["yield"]),
     "data.features must be a list of column names, got the string 'temp'"),
    (lambda: TabularDataModule(csv_path="data.csv", targets=[3]),
     "data.targets must be a list of column names, got [3]"),
]  # fmt: skip


@pytest.mark.parametrize(("build", "words"), API_CASES)
def test_the_python_api_names_the_argument_of_the_wrong_type(build, words) -> None:
    Path("data.csv").write_text(GOOD)
    with pytest.raises(InputError) as info:
        build()
    assert words in str(info.value) and "\n" not in str(info.value)


# --- read right ------------------------------------------------------------------------------


def test_a_decomposed_header_matches_a_composed_option() -> None:
    Path("data.csv").write_text(GOOD.replace("rain", "pluie\u0301"), encoding="utf-8")  # NFD é
    built = cli([*FIT[1:], "--data.features", "[temp, plui\u00e9]"], run=False)
    assert built.datamodule.feature_names == ["temp", "plui\u00e9"]


def test_predict_ignores_a_blank_target_column(trained, capsys) -> None:
    shutil.copy(trained, "model.ckpt")
    Path("data.csv").write_text("temp,rain,yield\n73,67,\n91,88,\n")
    main(PREDICT)
    assert "wrote 2 predictions" in capsys.readouterr().out
    assert Path("predictions.csv").read_text().count("\n") == 3


def test_default_predictions_never_replace_earlier_ones(trained, capsys) -> None:
    shutil.copy(trained, "model.ckpt")
    Path("data.csv").write_text(GOOD)
    main(PREDICT)
    first = Path("predictions.csv").read_text()
    main(PREDICT)
    out = capsys.readouterr().out
    assert "predictions-2.csv" in out and "replaced" not in out
    assert Path("predictions.csv").read_text() == first  # the first is kept
    assert Path("predictions-2.csv").read_text() == first


def test_a_named_predictions_file_is_replaced_and_said(trained, capsys) -> None:
    shutil.copy(trained, "model.ckpt")
    Path("data.csv").write_text(GOOD)
    Path("out.csv").write_text("an earlier file\n")
    main([*PREDICT, "--predictions.path", "out.csv"])
    assert "(it replaced the file of that name)" in capsys.readouterr().out
    assert Path("out.csv").read_text().startswith("yield\n")


def test_features_named_bias_keep_a_key_each(capsys) -> None:
    Path("data.csv").write_text("bias,(bias),yield\n1,2,3\n2,1,4\n3,5,2\n")
    main([*fit_csv(), "--trainer.max_epochs", "1"])
    import json

    saved = json.loads(Path("runs/checkpoints/parameters.json").read_text())["parameters"]
    assert list(saved["yield"]) == ["bias", "(bias)", "((bias))"]


def test_a_model_never_fitted_is_not_used_to_predict() -> None:
    with pytest.raises(InputError, match="never fitted"):
        quiet_trainer().predict(LinearRegression(3, 2, lr=0.1), CropYieldsDataModule())
    given = LinearRegression(3, 2, lr=0.1, init_weight=[[0.0] * 3] * 2, init_bias=[1.0, 2.0])
    (batch,) = quiet_trainer().predict(given, CropYieldsDataModule())
    assert torch.equal(batch, torch.tensor([[1.0, 2.0]]).expand(15, 2))
    loaded = LinearRegression(3, 2, lr=0.1)
    loaded.load_state_dict(given.state_dict())  # a state loaded by hand counts as fitted
    assert loaded.fitted


def test_a_resume_from_python_with_another_rate_is_refused(trained) -> None:
    data = TabularDataModule(csv_path=str(trained.parents[2] / "data.csv"), targets=["yield"])
    model = LinearRegression(2, 1, lr=0.5)
    with pytest.raises(InputError, match="lr is 0.5 but the run in the checkpoint"):
        quiet_trainer(max_epochs=4).fit(model, datamodule=data, ckpt_path=trained)


def test_an_include_bomb_through_the_environment_is_bounded(monkeypatch, capsys) -> None:
    Path("bomb.yaml").write_text(BOMB)
    monkeypatch.setenv("JSONARGPARSE_DEFAULT_ENV", "true")
    monkeypatch.setenv("PL_FIT__CONFIG", "bomb.yaml")
    refused(["fit"], "an alias bomb?", capsys)


# --- faults ---------------------------------------------------------------------------------

COMMAND = [sys.executable, "-m", "gd_lightning"]


def small_files() -> None:
    """Every write beyond 4 KiB fails (as on a full disk) in the process started next."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_leaves_no_half_written_run() -> None:
    run = subprocess.run([*COMMAND, "fit", "--config", "line_fit", "--trainer.max_epochs", "2",
                          "--convergence.verbose", "false"],
                         preexec_fn=small_files, capture_output=True, text=True)  # fmt: skip
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert lines[-1].startswith("gd-lightning: error: could not write lightning_logs/")
    assert not list(Path("lightning_logs").rglob("*.*"))  # the run's folder went with it


@pytest.mark.slow
def test_a_full_disk_under_the_predictions_keeps_the_older_file(trained) -> None:
    shutil.copy(trained, "model.ckpt")
    Path("data.csv").write_text("temp,rain\n" + "123456.5,654321.5\n" * 600)
    Path("predictions.csv").write_text("an earlier run's file\n")
    run = subprocess.run([*COMMAND, *PREDICT, "--predictions.path", "predictions.csv"],
                         preexec_fn=small_files, capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert "could not write predictions.csv (File too large)" in run.stderr.splitlines()[-1]
    assert Path("predictions.csv").read_text() == "an earlier run's file\n"
    assert sorted(p.name for p in Path(".").iterdir()) == ["data.csv", "model.ckpt",
                                                           "predictions.csv"]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "delay"),
    [(signal.SIGINT, 0.2), (signal.SIGINT, 0.8), (signal.SIGINT, 1.6), (signal.SIGTERM, 0.5)],
)
def test_a_stop_while_starting_is_one_line_and_its_exit_code(signum, delay: float) -> None:
    process = subprocess.Popen([*COMMAND, "fit", "--config", "line_fit"], text=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    time.sleep(delay)
    process.send_signal(signum)
    err = process.communicate(timeout=120)[1]
    assert process.returncode == 128 + signum and "Traceback" not in err, err[-2000:]
    name = "SIGINT" if signum == signal.SIGINT else "SIGTERM"
    assert err.strip().splitlines()[-1].startswith(f"gd-lightning: stopped by {name}")


@pytest.mark.slow
def test_fits_started_together_each_get_a_version() -> None:
    args = [*COMMAND, "fit", "--config", "crop_yields", "--trainer.max_epochs", "2",
            "--convergence.verbose", "false"]  # fmt: skip
    processes = [subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True) for _ in range(3)]  # fmt: skip
    errors = [p.communicate(timeout=300)[1] for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], errors
    versions = sorted(p.name for p in Path("lightning_logs", "crop_yields").iterdir())
    assert versions == ["version_0", "version_1", "version_2"]
    assert all(Path("lightning_logs", "crop_yields", v, "config.yaml").is_file() for v in versions)


# --- fuzz: options and config files, not only CSV bytes -------------------------------------

VALUE = st.one_of(
    st.integers(-3, 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(
        [
            "auto",
            "true",
            "null",
            "[yield]",
            "[]",
            "{}",
            "'x'",
            "1_0",
            "٣",
            "!!int 3",
            "&a [*a]",
            "[temp, temp]",
            "manual",
            "-1",
            "0",
            "1e-50",
            "1e400",
        ]
    ),
    st.text(alphabet="abcy[]{},:!&*'\" 0123456789.-_\n", max_size=12),
)
OPTION = st.sampled_from([
    "--model.lr", "--data.batch_size", "--data.val_fraction", "--trainer.max_epochs",
    "--data.targets", "--data.features", "--model.optimization", "--seed_everything",
    "--data.standardize_features", "--trainer.accumulate_grad_batches", "--model.init_bias",
    "--trainer.log_every_n_steps", "--checkpoint.every_n_epochs", "--predictions.path",
])  # fmt: skip
CONFIG_LINE = st.tuples(
    st.sampled_from(
        [
            "model",
            "data",
            "trainer",
            "seed_everything",
            "lr",
            "max_epochs",
            "model.init_args.lr",
            "  lr",
            "  max_epochs",
        ]
    ),
    VALUE,
).map(lambda pair: f"{pair[0]}: {pair[1]}")


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(options=st.lists(st.tuples(OPTION, VALUE), max_size=3),
       config=st.lists(CONFIG_LINE, max_size=4))  # fmt: skip
def test_fuzzed_options_and_configs_run_or_end_in_one_line(options, config, capsys) -> None:
    Path("data.csv").write_text(GOOD)
    Path("c.yaml").write_text("\n".join(config) + "\n")
    args = fit_csv("--trainer.max_epochs", "1", "--config", "c.yaml")
    args += [word for pair in options for word in pair]
    try:
        main(args)
    except SystemExit as exit_info:
        err = capsys.readouterr().err
        assert exit_info.code == 2, err[-2000:]
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("gd-lightning: error: "), err[-2000:]
    finally:
        shutil.rmtree("runs", ignore_errors=True)


@pytest.mark.parametrize("subcommand", ["predict", "validate", "test", "fit"])
def test_the_command_line_reads_a_checkpoint_once(subcommand, trained, monkeypatch) -> None:
    """The package reads the checkpoint once a command, for all its checks; LightningCLI
    (for the model's settings) and the Trainer (to restore it) read it once each."""
    shutil.copy(trained, "model.ckpt")
    Path("data.csv").write_text(GOOD)
    reads: list[str] = []
    load = torch.load

    def counted(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        reads.append(str(path))
        return load(path, *args, **kwargs)

    monkeypatch.setattr(torch, "load", counted)
    if subcommand == "fit":
        main([*FIT, "--ckpt_path", "model.ckpt", "--trainer.max_epochs", "3"])
    else:
        extra = ["--data.val_fraction", "0.4"] if subcommand == "validate" else []
        extra += ["--data.test_fraction", "0.4"] if subcommand == "test" else []
        main([subcommand, *PREDICT[1:], *extra])
    assert len(reads) == (3 if subcommand == "fit" else 2), reads
