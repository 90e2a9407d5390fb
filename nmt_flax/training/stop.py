"""Stopping a run on SIGINT/SIGTERM at one step that every process agrees on."""
import signal
import threading

import jax
import numpy as np


class StopRequest:
  """Turns SIGINT/SIGTERM into a stop that every process of a run makes at the
  same step, so all of them save that step together.

  One process stops after the step during which the signal came. With several,
  a signal reaches one process (or reaches them at different moments): each
  step carries every process's flag into the jitted step, which ORs them
  (`make_train_step`), and the loop reads that OR where it reads the step's
  metrics, at the same steps on every process; so all stop at the first such
  read after any of them was signalled."""

  def __init__(self):
    self.signal: int | None = None  # the signal this process received
    self.agreed = False             # every process knows that one was asked to stop

  def flags(self, rows: int) -> np.ndarray:
    """This process's request, as a step's batch["stop"]."""
    return np.full(rows, self.signal is not None)

  @property
  def alone_and_signalled(self) -> bool:
    """A lone process needs no agreement: its own signal is the decision."""
    return jax.process_count() == 1 and self.signal is not None

  def observe(self, step_stops: list) -> None:
    """Called where step metrics are read: `step_stops` are their "stop" values."""
    self.agreed = self.agreed or any(bool(s) for s in step_stops) or self.alone_and_signalled

  def describe(self) -> str:
    return (f"stopped by signal {self.signal}" if self.signal is not None
            else "stopped because another process of the run was signalled")

  def __enter__(self):
    self._previous = {}
    if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
      self._previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
    return self

  def _handle(self, signum, _frame):
    if self.signal is not None:  # a second Ctrl-C: give up at once
      raise KeyboardInterrupt
    self.signal = signum

  def __exit__(self, *exc):
    for s, handler in self._previous.items():
      signal.signal(s, handler)


class Interrupted(Exception):
  """Raised after the checkpoint of an interrupted run has been written."""
