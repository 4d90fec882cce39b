"""Executors: where a run's units run.

An executor is built with the run's :class:`~.unit.RunOptions` and has ``map(units)``: it
runs each unit (in this process, in a pool of worker processes, on a Ray cluster) through
:func:`~.unit.run_unit` and yields ``(unit, record)`` as each finishes, in any order. A
unit's own error is a failed record, never an exception; an executor that loses a unit (a
worker died) yields a failed record for it (``failure_record``): a unit is never silently
dropped. ``in_flight`` lists the keys of the units running now (for the interruption
message); ``options`` are the options its units run with (``options.executor`` names it);
``start()`` connects to whatever runs the units, before the results document is opened.
A new executor is a factory ``(options, jobs, n_units) -> executor`` in ``EXECUTORS``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from ..errors import UserError, choices, did_you_mean
from .plan import Unit
from .pool import PoolExecutor
from .unit import RunOptions, UnitRunner, failure_record, one_line


class LocalExecutor:
    """Runs units one after another in this process."""

    def __init__(self, options: RunOptions):
        self.options = options
        self.run = UnitRunner(options)
        self.in_flight: list[str] = []

    def start(self) -> None:
        pass  # this process runs the units

    def map(self, units: list[Unit]) -> Iterator[tuple[Unit, dict[str, Any]]]:
        for u in units:
            self.in_flight = [u.key]
            rec = self.run(u)
            self.in_flight = []
            yield u, rec


def reach(address: str, timeout: float) -> None:
    """A TCP connection to the Ray cluster at ``address`` (``host:port`` or
    ``ray://host:port``; ``auto`` and ``local`` are Ray's to find) within ``timeout``
    seconds, else one ``UserError`` line naming ``RAY_ADDRESS``: ``ray.init`` would print
    time-outs for minutes instead."""
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if address in ("auto", "local") or not sep:
        return
    where = f"the Ray cluster at RAY_ADDRESS={address}"
    if not port.isdigit():
        raise UserError(f"RAY_ADDRESS={address} is not host:port (or ray://host:port, auto)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        why = "timed out" if isinstance(e, TimeoutError) else (e.strerror or str(e))
        raise UserError(f"cannot reach {where} ({why} after at most {timeout:g} s); start "
                        "the cluster, or unset RAY_ADDRESS to run Ray on this machine") from None


def _ray_call(fn, unit):  # module level: Ray pickles it by reference, the closure by value
    return fn(unit)


class RayExecutor:
    """Fans units out on a Ray cluster (``pip install 'quirkbench[ray]'``). ``ray.init`` is
    the user's, else the cluster at ``RAY_ADDRESS`` or one started by ``ray start --head``
    on this machine, else a local one. Each unit is one Ray task (one GPU when the device is
    CUDA); a task whose worker dies is retried once, then recorded as failed."""

    RETRIES = 1
    CONNECT_TIMEOUT_S = 10.0  # an unreachable RAY_ADDRESS: Ray itself retries for minutes
    LOST = {"WorkerCrashedError", "NodeDiedError", "LocalRayletDiedError", "ObjectLostError",
            "OwnerDiedError", "OutOfMemoryError"}  # the worker is gone, not the unit's error

    def __init__(self, options: RunOptions):
        try:
            import ray
        except ImportError:
            raise UserError("--executor ray needs Ray: pip install 'quirkbench[ray]'") from None
        self.ray = ray
        self.options = options
        self.run = UnitRunner(options)
        self.gpus = 1 if options.device.type == "cuda" else 0
        self.in_flight: list[str] = []

    def start(self) -> None:
        """Connect (``ray.init``), unless the user already did."""
        if self.ray.is_initialized():
            return
        import logging

        address = os.environ.get("RAY_ADDRESS")
        if address:
            reach(address, self.CONNECT_TIMEOUT_S)
        try:
            self.ray.init(address=address, logging_level=logging.WARNING)
        except Exception as e:
            where = f"the Ray cluster at RAY_ADDRESS={address}" if address else "a local Ray"
            raise UserError(f"cannot start or reach {where}: {one_line(e)}") from None

    def map(self, units: list[Unit]) -> Iterator[tuple[Unit, dict[str, Any]]]:
        if not units:
            return
        self.start()
        remote = self.ray.remote(num_gpus=self.gpus, max_retries=self.RETRIES)(_ray_call)
        self.in_flight = [u.key for u in units]  # submitted: in flight from now on
        refs = {remote.remote(self.run, u): u for u in units}
        try:
            while refs:
                self.in_flight = [u.key for u in refs.values()]
                # a time-out, so that Ctrl-C and SIGTERM are handled within a second
                done, _ = self.ray.wait(list(refs), num_returns=1, timeout=1.0)
                for ref in done:
                    u = refs.pop(ref)
                    try:
                        rec = self.ray.get(ref)
                    except self.ray.exceptions.RayError as e:
                        if type(e).__name__ in self.LOST:  # after Ray's retries
                            e = f"{type(e).__name__}: the Ray worker running this unit was " \
                                f"lost (tried {1 + self.RETRIES} times)"
                        rec = failure_record(u, e)  # else: e.g. quirkbench missing on a node
                    yield u, rec
            self.in_flight = []
        finally:  # interrupted: in_flight still names the units for the message
            for ref in refs:
                try:
                    self.ray.cancel(ref, force=True)
                except Exception:
                    pass


def _local(options: RunOptions, jobs: int, n_units: int):
    """``--jobs N`` > 1: a pool of N worker processes; else this process."""
    if jobs > 1 and n_units > 1:
        return PoolExecutor(jobs, replace(options, executor="pool"))
    return LocalExecutor(replace(options, executor="local"))


def _ray(options: RunOptions, jobs: int, n_units: int):
    return RayExecutor(replace(options, executor="ray"))  # Ray places the units; no --jobs


EXECUTORS: dict[str, Callable[[RunOptions, int, int], Any]] = {"local": _local, "ray": _ray}


def make_executor(name: str, options: RunOptions, jobs: int = 1, n_units: int = 1):
    """The executor for ``--executor NAME``."""
    if name not in EXECUTORS:
        raise UserError(f"unknown executor {name!r}{did_you_mean(name, EXECUTORS)}; valid: "
                        f"{choices(EXECUTORS)}")
    return EXECUTORS[name](options, jobs, n_units)
