"""The commit worker: a second Python process that validates, de-duplicates and commits what `ingest_pending` polls.

Why a process: kafka-python decodes every record in Python while holding the GIL (~14 µs a message, most of a
consumer's time). Validation, de-duplication and Delta writes on a thread of the same process wait for that GIL; in
their own process they run on another core, and the polling process only polls.

How: the parent starts a fresh interpreter (`python -c ...serve()`; never a fork of a process that runs delta-rs'
tokio runtime and kafka-python's threads) and talks to it over its stdin and stdout, in length-prefixed pickles:

    parent -> worker   ("open", (sink, quarantine positions))  once, first
                       ("messages", [Messages, ...])       one poll's messages; validated as they arrive
                       ("commit", None)                    commit everything sent since the last commit, as one batch
                       end of stdin                        stop; messages not asked to be committed are dropped
    worker -> parent   ("committed", CommitSummary)        after each commit, in order
                       ("error", (traceback, pickled exception))   and the worker exits

Exactly once does not rest on the worker: each Delta commit carries its rows and its positions together. The worker
commits only when asked, and dies with its parent (Linux: PR_SET_PDEATHSIG), so a killed ingestion leaves no commit to
land later; were one to land, Delta would reject the next run's commit of the same positions (CommitFailedError).

This module imports nothing heavy at the top: the parent needs only `CommitWorker`, and the worker keeps pandas out
before it imports pyarrow (see `_NoPandas`).
"""

from __future__ import annotations

import contextlib
import copyreg
import ctypes
import importlib.abc
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Self

import podrec_assets

if TYPE_CHECKING:
    from podrec_assets.lib.ingestion.delta_sink import Batch, CommitSummary, DeltaEventSink, Messages

# Set, to the parent's PID, in the environment of a commit worker.
PARENT_PID_ENV = "PODREC_COMMIT_WORKER_PARENT"
_LENGTH = struct.Struct("<Q")
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
REAPER_THREAD = "commit-worker-reap"  # waits for a worker that has finished to exit
# The poller is the bottleneck and the worker has time to spare: when the cores are all busy, the CPU should go to
# polling (and to a local broker) first. On 2 idle cores the benchmark ratio was as good or better at 10 than at 0.
WORKER_NICENESS = 10


class CommitWorkerError(RuntimeError):
    """The commit worker failed or died; the message carries its traceback or exit status."""


def _write_frame(fd: int, payload: bytes) -> None:
    for data in (_LENGTH.pack(len(payload)), memoryview(payload)):
        while data:
            data = data[os.write(fd, data) :]


def _read_frame(stream: IO[bytes]) -> Any | None:
    """The next message, or None at the end of the stream."""
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(header)
    payload = stream.read(length)
    if len(payload) < length:
        return None
    return pickle.loads(payload)


class CommitWorker:
    """The parent's side: start the worker, send it messages, ask for commits, collect their summaries.

    Use as a context manager: leaving normally ends the worker's input, and it exits; leaving on an exception (or with
    a commit not waited for) kills it, which is safe at any point (see the module docstring)."""

    def __init__(self) -> None:
        # The child imports this very package, wherever the parent got it from (a work tree, an installed copy).
        package_root = str(Path(podrec_assets.__file__).resolve().parents[1])
        env = {
            **os.environ,
            PARENT_PID_ENV: str(os.getpid()),
            "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
        }
        self._process = subprocess.Popen(
            [sys.executable, "-c", "from podrec_assets.lib.ingestion.commit_worker import serve; serve()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
        )  # fmt: skip
        # Both are pipes, as asked just above (Popen leaves them None only when not asked for).
        assert self._process.stdin is not None and self._process.stdout is not None
        self._to_worker: IO[bytes] = self._process.stdin
        self._from_worker: IO[bytes] = self._process.stdout
        # Frames go out through a thread: while the worker commits, a full pipe must block that thread, not polling.
        self._outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._sender = threading.Thread(target=self._send_frames, name="commit-worker-send", daemon=True)
        self._sender.start()
        self._commits_asked = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None or self._commits_asked:
            self._process.kill()
        self._outbox.put(None)  # the end of its input: a worker with nothing left to do exits
        self._sender.join()
        self._from_worker.close()
        if exc_type is None:  # it exits by itself; its teardown takes ~20 ms, so reap it meanwhile
            threading.Thread(target=self._process.wait, name=REAPER_THREAD, daemon=True).start()
        else:
            self._process.wait()

    def _send_frames(self) -> None:
        fd = self._to_worker.fileno()
        try:
            while (payload := self._outbox.get()) is not None:
                _write_frame(fd, payload)
        except OSError:  # the worker is gone; the main thread learns why from its output or exit status
            pass
        finally:
            self._to_worker.close()

    def _send(self, message: tuple) -> None:
        if self._process.poll() is not None:  # died: say why now rather than at the next commit
            raise self._failure()
        self._outbox.put(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))

    def open(self, sink: DeltaEventSink, quarantine_from: dict[int, int]) -> None:
        self._send(("open", (sink, quarantine_from)))

    def send_messages(self, messages: list[Messages]) -> None:
        self._send(("messages", messages))

    def commit(self) -> None:
        """Ask for everything sent since the last commit to be committed as one batch (returns at once)."""
        self._send(("commit", None))
        self._commits_asked += 1

    def wait_committed(self) -> CommitSummary:
        """The summary of the oldest commit asked for and not yet waited for, once it is in the Delta log."""
        assert self._commits_asked > 0, "no commit was asked for"
        reply = _read_frame(self._from_worker)
        if reply is None or reply[0] != "committed":
            raise self._failure(reply)
        self._commits_asked -= 1
        return reply[1]

    def _failure(self, reply: tuple | None = None) -> BaseException:
        """The worker's own exception (with its traceback as the cause) or, if it just died, its exit status."""
        while reply is not None and reply[0] != "error":
            reply = _read_frame(self._from_worker)
        if reply is None:
            status = self._process.wait()
            return CommitWorkerError(
                f"commit worker exited with status {status} without saying why (see its stderr)"
            )
        remote_traceback, pickled = reply[1]
        cause = CommitWorkerError(f"commit worker failed:\n{remote_traceback}")
        try:
            error = pickle.loads(pickled)
        except Exception:  # noqa: BLE001 - an exception that does not unpickle: the traceback says it all
            return cause
        error.__cause__ = cause
        return error


def _delta_error(name: str, args: tuple) -> BaseException:
    """A deltalake exception, rebuilt in the parent: as they are they do not pickle (their module is `_internal`)."""
    from deltalake import exceptions

    return getattr(exceptions, name)(*args)


def _pickle_delta_errors_by_name() -> None:
    """So that, say, a racing run's CommitFailedError reaches the parent as a CommitFailedError."""
    from deltalake import exceptions

    for name, cls in vars(exceptions).items():
        if isinstance(cls, type) and issubclass(cls, BaseException):
            copyreg.pickle(cls, lambda error, name=name: (_delta_error, (name, error.args)))


class _NoPandas(importlib.abc.MetaPathFinder):
    """Keeps pandas out of the worker. pyarrow imports it (~0.4 s, half the worker's start-up) on its first conversion
    of a Python list, only to ask whether the list is a pandas object; nothing in the worker uses pandas."""

    def find_spec(self, name: str, path=None, target=None) -> None:
        if name.partition(".")[0] == "pandas":
            raise ModuleNotFoundError(
                f"{name} is kept out of the commit worker (commit_worker._NoPandas)", name=name
            )


def _die_with_parent() -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux). Elsewhere the end of stdin stops it."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != int(os.environ[PARENT_PID_ENV]):  # the parent died before prctl took effect
        os._exit(1)


def serve() -> None:
    """The worker's main loop (in the child process; see the module docstring for the protocol)."""
    _die_with_parent()
    os.nice(WORKER_NICENESS)
    sys.meta_path.insert(0, _NoPandas())
    inbox = sys.stdin.buffer
    reply_fd = os.dup(sys.stdout.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a stray print must not corrupt the replies
    try:
        from podrec_assets.lib.ingestion.delta_sink import build_batch, merge_batches  # after _NoPandas

        _pickle_delta_errors_by_name()

        opening = _read_frame(inbox)  # unpickling the sink opens its tables here
        if opening is None:
            raise EOFError("the parent ended the worker's input before sending 'open'")
        kind, (sink, quarantine_from) = opening
        assert kind == "open", kind
        sink.known_event_ids()  # loaded while the parent polls the first messages
        pending: list[Batch] = []
        seen: set[str] = set()  # event ids taken into the pending batch
        now: datetime | None = None
        while (message := _read_frame(inbox)) is not None:
            kind, payload = message
            if kind == "messages":
                now = now or datetime.now(UTC)  # one time per batch: ingested_at, future-timestamp check
                pending.append(build_batch(payload, sink, quarantine_from, now, seen))
            elif kind == "commit":
                batch = merge_batches(pending)
                sink.commit(batch.events, batch.rejects, batch.next_offsets)
                for partition, offset in batch.next_offsets.items():
                    quarantine_from[partition] = max(quarantine_from.get(partition, 0), offset)
                _write_frame(reply_fd, pickle.dumps(("committed", batch.summary())))
                pending, seen, now = [], set(), None
            else:
                raise ValueError(f"unknown message {kind!r}")
    except BaseException as error:  # noqa: BLE001 - whatever it is, the parent must hear of it
        try:
            pickled = pickle.dumps(error)
        except Exception:  # noqa: BLE001 - not picklable: the traceback will do
            pickled = b""
        _write_frame(reply_fd, pickle.dumps(("error", (traceback.format_exc(), pickled))))
        sys.exit(1)
    os._exit(0)  # all said, nothing to flush: skip tearing down the interpreter (~0.1 s)
