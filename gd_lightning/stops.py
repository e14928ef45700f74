"""What the command does with a stop signal (SIGINT, SIGTERM) until it exits.

The command line (`gd_lightning.cli.main`) installs `on_stop` for both signals while
it runs (`stops_handled`); importing the package installs nothing, so a Python user
who builds a Trainer sees Lightning's own behaviour. While installed:

- a stop is recorded (`stop_signal`), and no file is committed after it: the atomic
  writes of `gd_lightning.io` call `raise_if_stopped` before they rename the finished
  temporary file over its target, so every file is the one from before the signal
  or absent;
- Ctrl+C raises ``KeyboardInterrupt`` at once, as Python's own handler does;
- SIGTERM raises Lightning's ``SIGTERMException`` at once, except while Lightning's
  fit runs: Lightning then calls this handler from its own (which it composes with
  the one it found), and its loop stops at the next batch boundary, so a training
  step is never cut mid-way;
- for the few lines that create and remove a temporary file (`stops_held`), a
  signal is held and acted on when they end, so no temporary file outlives the run.
"""

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from lightning.pytorch.utilities.exceptions import SIGTERMException

#: the signals that stop the command
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: Lightning's top-level logger, whose level its documentation sets to quiet it
LIGHTNING_LOGGER = "lightning.pytorch"


class _Stops:
    """The process's record of stop signals (one per process: signals are)."""

    def __init__(self) -> None:
        self.installed = False
        #: the first stop signal received since the handlers were installed
        self.received: int | None = None
        #: how deep in `stops_held` blocks the main thread is, and the signal held there
        self.holding = 0
        self.held: int | None = None


_STOPS = _Stops()


def stop_signal() -> int | None:
    """The stop signal the command received (``signal.SIGINT`` or ``signal.SIGTERM``),
    or ``None``: none yet, or the command's handlers are not installed."""
    return _STOPS.received


def stop_exception(signum: int) -> BaseException:
    """The exception that ends a run stopped by ``signum``: ``KeyboardInterrupt`` for
    SIGINT, as Python raises it, Lightning's ``SIGTERMException`` for SIGTERM.

    Examples:
        >>> type(stop_exception(signal.SIGTERM)).__name__
        'SIGTERMException'
    """
    return KeyboardInterrupt() if signum == signal.SIGINT else SIGTERMException()


def raise_if_stopped() -> None:
    """Raise `stop_exception` of the stop signal the command received, if any, while it
    runs: work that starts after a stop (a figure, a frame, the commit of a file) is
    not done. Outside the command (a Trainer run from Python) it does nothing."""
    if _STOPS.installed and _STOPS.received is not None:
        raise stop_exception(_STOPS.received)


def on_stop(signum: int, frame: FrameType | None) -> None:
    """The handler of SIGINT and SIGTERM while the command runs: record the signal,
    then stop now unless it is held (`stops_held`) or Lightning's fit loop will stop
    at its next batch boundary."""
    if _STOPS.received is None:
        _STOPS.received = signum
        # from now on the command's stop line is the one line: Lightning's own notices as
        # it winds down ("Detected KeyboardInterrupt, attempting graceful shutdown") are
        # left out through its top-level logger, the way Lightning documents; its warnings
        # and errors still show
        logging.getLogger(LIGHTNING_LOGGER).setLevel(logging.WARNING)
    if _STOPS.holding:
        _STOPS.held = _STOPS.held or signum
        return
    _act_on(signum)


def _act_on(signum: int) -> None:
    # SIGTERM while a fit runs comes through Lightning's handler, installed over this
    # one; the fit loop raises at a batch boundary and the next commit is refused
    if signum == signal.SIGINT or signal.getsignal(signal.SIGTERM) is on_stop:
        raise stop_exception(signum)


def _in_main_thread() -> bool:
    # Python runs signal handlers in the main thread only, and installs them only there
    return threading.current_thread() is threading.main_thread()


@contextmanager
def stops_handled() -> Iterator[None]:
    """Install `on_stop` for SIGINT and SIGTERM for the block (main thread only), with
    a fresh record; the earlier handlers come back at its end, the record stays."""
    _STOPS.received, _STOPS.held, _STOPS.holding = None, None, 0
    if not _in_main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    lightning_level = logging.getLogger(LIGHTNING_LOGGER).level
    try:
        _STOPS.installed = True
        for signum in STOP_SIGNALS:
            signal.signal(signum, on_stop)
        yield
    finally:
        _STOPS.installed = False
        logging.getLogger(LIGHTNING_LOGGER).setLevel(lightning_level)
        for signum, handler in previous.items():
            if handler is not None:  # None: installed from C, which Python cannot restore
                signal.signal(signum, handler)


@contextmanager
def stops_held() -> Iterator[None]:
    """Hold a stop signal while the block runs and act on it when the block ends.

    For the few lines between creating a temporary file and taking charge of it, or
    while removing it: an exception raised there would leave it behind. (Blocking the
    signal with ``pthread_sigmask`` is not enough: the kernel hands it to another
    thread, PyTorch's for one, and Python still runs the handler in the main thread.)
    Without the command's handlers, or outside the main thread, the block just runs.
    """
    if not _STOPS.installed or not _in_main_thread():
        yield
        return
    _STOPS.holding += 1
    try:
        yield
    finally:
        _STOPS.holding -= 1
        held = _STOPS.held
        if not _STOPS.holding and held is not None:
            _STOPS.held = None
            _act_on(held)
