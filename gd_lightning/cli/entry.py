"""The installed ``gd-lightning`` command's entry point, light on purpose: PyTorch and
Lightning load inside it, so Ctrl+C while they load ends in one line, not a traceback."""

import gc
import os
import signal
import sys
from types import FrameType


def command() -> None:
    """The installed ``gd-lightning`` (and ``python -m gd_lightning``): load the command
    line, run `main`, then exit quickly (``gd-lightning tutorials`` answers before
    loading it). The process ends
    right after, so the objects its imports made (torch's and Lightning's, millions) are
    moved out of the garbage collector's sight (``gc.freeze``) instead of being traversed
    once more on the way out, which took about a second."""
    # Ctrl+C or SIGTERM while the libraries load: nothing is written yet, so the process
    # ends at once (a KeyboardInterrupt raised inside a half-done import can surface as
    # another error; SIGTERM's default action would end it without a word)
    if sys.argv[1:] == ["tutorials"]:  # a list of files: neither PyTorch nor Lightning
        from gd_lightning.cli.tutorials import tutorial_list

        print(tutorial_list())
        return
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _stopped_while_starting)
    from gd_lightning.cli.exits import main  # PyTorch, Lightning, jsonargparse

    # main() installs its own handlers and says what a stop kept
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        main()
    finally:
        gc.freeze()


def _stopped_while_starting(signum: int, frame: FrameType | None) -> None:
    name = "SIGINT (Ctrl+C)" if signum == signal.SIGINT else "SIGTERM"
    print(f"gd-lightning: stopped by {name} while starting; nothing was written",
          file=sys.stderr, flush=True)  # fmt: skip
    os._exit(128 + signum)
