"""How the command ends: a user's mistake in one line and exit code 2, a signal in
one line and 128 + its number."""

import argparse
import os
import signal
import sys

from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.cli import ArgsType
from lightning.pytorch.utilities.exceptions import SIGTERMException

from gd_lightning.cli.app import cli
from gd_lightning.cli.run_folders import WRITE_ERRORS
from gd_lightning.cli.tutorials import tutorial_list
from gd_lightning.errors import InputError, exception_chain

DEBUG_VARIABLE = "GD_LIGHTNING_DEBUG"


def main(args: ArgsType = None) -> None:
    """Entry point of ``gd-lightning``: a user's mistake ends in one line and exit code 2.

    Set the environment variable ``GD_LIGHTNING_DEBUG=1`` to see the full traceback.
    """
    words = sys.argv[1:] if args is None else args
    if isinstance(words, list | tuple) and list(words[:1]) == ["tutorials"]:
        print(tutorial_list())
        return
    try:
        cli(args)
    except (SystemExit, KeyboardInterrupt) as err:
        code = interrupted_exit_code(err)
        if code is None:
            raise
        name = "SIGTERM" if code == SIGTERM_EXIT else "SIGINT (Ctrl+C)"
        print(
            f"gd-lightning: stopped by {name}; the checkpoints saved so far are kept "
            f"(resume a fit with --ckpt_path last)",
            file=sys.stderr,
        )
        sys.exit(code)
    except Exception as err:
        if os.environ.get(DEBUG_VARIABLE):
            raise
        cause = _input_error(err)
        if cause is not None:
            message = str(cause)
        elif isinstance(err, OSError) and err.errno in WRITE_ERRORS:
            # a full disk, a folder gone read-only: what could not be written, and where
            reason = err.strerror or type(err).__name__
            where = err.filename or "a file of the run"
            message = (
                f"could not write {where} ({reason}): free some space, or write "
                f"elsewhere (--trainer.default_root_dir, --predictions.path); nothing "
                f"half-written was kept"
            )
        elif isinstance(err, MisconfigurationException):
            # Lightning's own refusal of a setting, as a run starts: its words, in a line
            reason = " ".join(str(err).split())
            message = f"Lightning refused the run's settings: {reason} (fix the option it names)"
        elif isinstance(err, argparse.ArgumentError):
            message = option_error(str(err))
        else:
            raise
        print(f"gd-lightning: error: {message}", file=sys.stderr)
        sys.exit(2)


#: the exit codes of a process ended by SIGTERM and SIGINT, as a shell reports them (128 + n)
SIGTERM_EXIT = 128 + signal.SIGTERM
SIGINT_EXIT = 128 + signal.SIGINT


def interrupted_exit_code(err: BaseException) -> int | None:
    """The exit code of a run stopped by a signal, or ``None`` for any other exit.

    Lightning ends a fit that receives SIGTERM with ``SIGTERMException``, a
    ``SystemExit`` without a code (which a shell would read as success), and one
    interrupted by Ctrl+C with ``sys.exit(1)`` while it handles the
    ``KeyboardInterrupt``, which Python keeps as the exit's context.
    """
    for current in exception_chain(err):
        if isinstance(current, SIGTERMException):
            return SIGTERM_EXIT
        if isinstance(current, KeyboardInterrupt):
            return SIGINT_EXIT
    return None


def option_error(message: str) -> str:
    """jsonargparse's report of a wrong option, as a line (the command line names the
    option itself where it can, `refused_option`)."""
    return f"{' '.join(message.split())} (gd-lightning <subcommand> --help lists the options)"


def _input_error(err: BaseException) -> InputError | None:
    """The user's mistake behind ``err``, which jsonargparse may have wrapped, if any."""
    return next((e for e in exception_chain(err) if isinstance(e, InputError)), None)
