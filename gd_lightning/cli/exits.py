"""How the command ends: a user's mistake in one line and exit code 2, a signal in
one line and 128 + its number."""

import argparse
import os
import signal
import sys
import warnings
from typing import NoReturn

from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.cli import ArgsType
from lightning.pytorch.utilities.exceptions import SIGTERMException

from gd_lightning.callbacks.run_folders import WRITE_ERRORS
from gd_lightning.cli.app import SUBCOMMANDS, cli
from gd_lightning.cli.tutorials import tutorial_list
from gd_lightning.errors import InputError, exception_chain
from gd_lightning.stops import stop_signal, stops_handled

DEBUG_VARIABLE = "GD_LIGHTNING_DEBUG"


def main(args: ArgsType = None) -> None:
    """Entry point of ``gd-lightning``: a user's mistake ends in one line and exit code 2,
    a stop signal (Ctrl+C, SIGTERM) in one line and exit code 130 or 143.

    While it runs, SIGINT and SIGTERM are recorded and no file is committed after them
    (`gd_lightning.stops`). Set the environment variable ``GD_LIGHTNING_DEBUG=1`` to
    see the full traceback of an error.
    """
    words = sys.argv[1:] if args is None else args
    if isinstance(words, list | tuple) and list(words[:1]) == ["tutorials"]:
        print(tutorial_list())
        return
    formatting, warnings.formatwarning = warnings.formatwarning, one_line_warning
    try:
        with stops_handled():
            cli(args)
    except (SystemExit, KeyboardInterrupt) as err:
        code = interrupted_exit_code(err)
        if code is None:
            raise
        stopped(code, words)
    except Exception as err:
        if os.environ.get(DEBUG_VARIABLE):
            raise
        code = interrupted_exit_code(err)
        if code is not None:  # an error raised on the way out of a stop is the stop
            stopped(code, words)
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
    finally:
        warnings.formatwarning = formatting
    received = stop_signal()
    if received is not None:
        # after Lightning's last look at it (the last checkpoint, the predictions being
        # written): the file then in the making was not committed, the run did not finish
        stopped(128 + received, words)


def one_line_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    line: str | None = None,
) -> str:
    """A warning as the command line says it, on one line: its words, without the file
    and line of the library that raised it (``warnings.formatwarning``'s signature)."""
    return f"gd-lightning: warning: {' '.join(str(message).split())}\n"


def stopped(code: int, words: ArgsType) -> NoReturn:
    """Say in one line that the command ``words`` was stopped by a signal, then exit
    with ``code`` (130 for SIGINT, 143 for SIGTERM)."""
    name = "SIGTERM" if code == SIGTERM_EXIT else "SIGINT (Ctrl+C)"
    if _subcommand(words) in (None, "fit"):
        kept = ("the checkpoints saved so far are kept (a fit saving them with "
                "--checkpoint.save_last true resumes with --ckpt_path last)")  # fmt: skip
    else:
        kept = "nothing half-written was kept"
    print(f"gd-lightning: stopped by {name}; {kept}", file=sys.stderr)
    sys.exit(code)


def _subcommand(words: ArgsType) -> str | None:
    """The subcommand in ``words`` (the command line's arguments), where it can be told."""
    if isinstance(words, list | tuple):
        return next((word for word in words if word in SUBCOMMANDS), None)
    if isinstance(words, dict):
        return words.get("subcommand")
    return None


#: the exit codes of a process ended by SIGTERM and SIGINT, as a shell reports them (128 + n)
SIGTERM_EXIT = 128 + signal.SIGTERM
SIGINT_EXIT = 128 + signal.SIGINT


def interrupted_exit_code(err: BaseException) -> int | None:
    """The exit code of a run stopped by a signal, or ``None`` for any other exit.

    Lightning ends a fit that receives SIGTERM with ``SIGTERMException``, a
    ``SystemExit`` without a code (which a shell would read as success), and one
    interrupted by Ctrl+C with ``sys.exit(1)`` while it handles the
    ``KeyboardInterrupt``, which Python keeps as the exit's context (as it does
    when a library's clean-up fails on the way out: matplotlib's animation writer
    raises ``IndexError`` while handling a ``KeyboardInterrupt``). Where the chain
    holds neither, a stop the command recorded (`gd_lightning.stops.stop_signal`)
    still decides: whatever went wrong after it, the run was stopped.
    """
    for current in exception_chain(err):
        if isinstance(current, SIGTERMException):
            return SIGTERM_EXIT
        if isinstance(current, KeyboardInterrupt):
            return SIGINT_EXIT
    received = stop_signal()
    return None if received is None else 128 + received


def option_error(message: str) -> str:
    """jsonargparse's report of a wrong option, as a line (the command line names the
    option itself where it can, `refused_option`)."""
    return f"{' '.join(message.split())} (gd-lightning <subcommand> --help lists the options)"


def _input_error(err: BaseException) -> InputError | None:
    """The user's mistake behind ``err``, which jsonargparse may have wrapped, if any."""
    return next((e for e in exception_chain(err) if isinstance(e, InputError)), None)
