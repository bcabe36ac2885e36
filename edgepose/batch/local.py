"""``--engine local``: the workers as processes on this machine (started with spawn, so no
worker inherits the parent's threads or open models), one video at a time each.

Each worker has its own inbox, so the parent always knows which video a worker holds: a
worker that dies (a decoder crash) fails that video alone, and a new worker takes over the
rest. On a stop (an exception in the parent, e.g. KeyboardInterrupt from SIGINT or
SIGTERM), busy workers get SIGTERM, delete their temporary file and exit; records of
videos finished meanwhile are still handed over. A parent that ends without stopping them
(SIGKILL, a crash) is noticed by every worker, which then stops as on SIGTERM: none is
left running, or waiting for work, on its own.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import multiprocessing
import multiprocessing.connection
import os
import queue
import signal
import threading
import time
from typing import Any, Callable

from edgepose.batch.worker import VideoWorker, WorkerConfig, new_record, one_line
from edgepose.errors import EdgeposeError

log = logging.getLogger(__name__)

POLL_S = 0.5
REPORT_EVERY_S = 0.25
STOP_TIMEOUT_S = 15.0
ORPHAN_GRACE_S = 5.0  # a worker whose parent is gone: time to delete its temporary file


@dataclasses.dataclass
class _Slot:
    process: Any
    inbox: Any
    task: dict | None = None
    ready: bool = False


def run_local(tasks: list[dict], config: WorkerConfig, workers: int,
              on_record: Callable[[dict], None],
              on_frames: Callable[[int], None] | None = None) -> None:
    """Run every task on ``workers`` processes; ``on_record(record)`` for each video as
    it finishes, ``on_frames(n)`` as frames are done. EdgeposeError when a worker cannot
    build its pipeline or start at all."""
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    pending = collections.deque(tasks)
    slots: dict[int, _Slot] = {}

    def give(slot: _Slot) -> None:
        slot.task = pending.popleft() if pending else None
        slot.inbox.put(slot.task)  # None: no more work, exit

    def start() -> None:
        index = max(slots, default=-1) + 1
        inbox = ctx.SimpleQueue()
        process = ctx.Process(target=worker_main, args=(index, config, inbox, results),
                              name=f"edgepose-batch-{index}", daemon=True)
        process.start()
        slots[index] = slot = _Slot(process, inbox)
        give(slot)

    try:
        for _ in range(min(workers, len(pending))):
            start()
        checked = time.monotonic()
        while any(slot.task is not None for slot in slots.values()):
            try:
                kind, index, payload = results.get(timeout=POLL_S)
            except queue.Empty:
                kind = None
            if kind == "frames" and on_frames is not None:
                on_frames(payload)
            elif kind == "ready":
                slots[index].ready = True
            elif kind == "error":
                raise EdgeposeError(payload)
            elif kind == "done":
                on_record(payload)
                give(slots[index])
            if kind is None or time.monotonic() - checked > POLL_S:
                checked = time.monotonic()
                for slot in list(slots.values()):
                    if slot.task is not None and not slot.process.is_alive():
                        _replace_dead(slot, config, on_record)
                        if pending:
                            start()
    finally:
        _stop(slots, results, on_record)


def _replace_dead(slot: _Slot, config: WorkerConfig, on_record) -> None:
    code = slot.process.exitcode
    how = f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
    if not slot.ready:
        raise EdgeposeError(f"a batch worker process ended ({how}) before its pipeline was "
                            "ready: run `edgepose run` on one video with the same options to see why")
    log.warning("a worker process ended (%s) on %s", how, slot.task["path"])
    on_record(new_record(slot.task, config, None, f"the worker process ended ({how}) on this video"))
    slot.task = None


def _stop(slots: dict[int, _Slot], results, on_record) -> None:
    """End every worker (SIGTERM to busy ones), then hand over the records of videos
    that finished in the meantime."""
    for slot in slots.values():
        if slot.task is not None and slot.process.is_alive():
            slot.process.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for slot in slots.values():
        slot.process.join(max(0.0, deadline - time.monotonic()))
        if slot.process.is_alive():
            slot.process.kill()
            slot.process.join()
    while True:
        try:
            kind, _, payload = results.get(timeout=0.05)
        except (queue.Empty, EOFError, OSError):
            break
        if kind == "done":
            on_record(payload)
    results.close()


class _FrameReporter:
    """``update(n)`` for the frame loop: frame counts sent to the parent a few times a
    second, not once per frame."""

    def __init__(self, results, index: int) -> None:
        self.results, self.index = results, index
        self.count, self.sent = 0, time.monotonic()

    def update(self, n: int = 1) -> None:
        self.count += n
        if time.monotonic() - self.sent >= REPORT_EVERY_S:
            self.flush()

    def flush(self) -> None:
        if self.count:
            self.results.put(("frames", self.index, self.count))
        self.count, self.sent = 0, time.monotonic()


def _exit_on_sigterm(signum, frame):
    # SystemExit unwinds the frame loop, so the sink closes and the temporary file goes
    raise SystemExit(128 + signum)


def _stop_with_parent(results) -> None:
    """End this worker when its parent ends without stopping it (SIGKILL, a crash): a
    thread waits on the parent's sentinel (every spawned child has one; it becomes
    readable when the parent is gone, whatever killed it), then stops the worker as the
    parent would: SIGTERM to the main thread, whether it is in the frame loop or waiting
    for its next video, so its temporary file is deleted. Should that not end it within
    ORPHAN_GRACE_S, the process exits outright. With the workers gone, multiprocessing's
    resource tracker (held open by them too) ends as well."""
    parent = multiprocessing.parent_process()
    if parent is None or parent.sentinel is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        results.cancel_join_thread()  # nobody reads them any more: do not wait at exit
        os.kill(os.getpid(), signal.SIGTERM)  # handled in the main thread, as the parent's
        time.sleep(ORPHAN_GRACE_S)
        os._exit(128 + signal.SIGTERM)

    threading.Thread(target=watch, name="edgepose-parent-watch", daemon=True).start()


def worker_main(index: int, config: WorkerConfig, inbox, results) -> None:
    """A worker process: build the pipeline, then run tasks from ``inbox`` until None."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    if hasattr(signal, "SIGHUP"):  # a terminal's hangup reaches the whole job: the parent's
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    _stop_with_parent(results)
    logging.basicConfig(level=logging.INFO if config.verbose else logging.WARNING,
                        format="edgepose: %(levelname)s: %(message)s")
    try:
        try:
            worker = VideoWorker(config)
        except EdgeposeError as exc:
            results.put(("error", index, one_line(exc)))
            return
        results.put(("ready", index, None))
        reporter = _FrameReporter(results, index)
        while (task := inbox.get()) is not None:
            record = worker.process(task, reporter)
            reporter.flush()
            results.put(("done", index, record))
        worker.close()
    except SystemExit:
        pass
