"""Methods the tests run; a module of its own so worker processes can import them."""

import ctypes
import math
import os
import signal
import time
from pathlib import Path

import numpy as np

import pursuit
from pursuit import Choice, Float, Int


@pursuit.method(source="Test et al. 2020", baseline=True)
def quadratic(trial, *, x=Float(-5.0, 5.0, default=3.0)):
    """Best at x = 1: value 1 - (x - 1)^2 plus seed noise; maximize."""
    noise = 0.001 * np.random.default_rng(trial.seed).standard_normal()
    for step in range(3):
        trial.report(step, value=float(step))
    return 1.0 - (x - 1.0) ** 2 + noise


@pursuit.method(source="ours")
def curve(trial, *, lr=Float(1e-3, 1.0, log=True, default=0.01), steps=Int(1, 20, default=10)):
    value = 0.0
    for step in range(steps):
        value += lr
        trial.report(step, value=value)
        if trial.should_stop():
            raise pursuit.Pruned()
    return min(value, 0.4)


@pursuit.method(source="ours")
def discrete(trial, *, k=Int(0, 11, default=0)):
    """Twelve configurations, best at k = 7 (value 1), seed noise 0.02; maximize."""
    noise = 0.02 * np.random.default_rng([trial.seed, k]).standard_normal()
    return 1.0 - abs(k - 7) / 10 + noise


@pursuit.method(baseline=True, source="fixed")
def constant(trial):
    return 0.25


@pursuit.method
def plain(trial, *, mode=Choice(["a", "b"], default="a")):
    return {"value": 0.25 if mode == "a" else 0.75, "aux": np.float32(1.5)}


def raises(trial):
    raise RuntimeError("boom in the method")


def returns_nan(trial):
    return math.nan


def returns_text(trial):
    return "not a number"


def exits(trial):
    os._exit(3)


def segfaults(trial):
    ctypes.string_at(0)


def hangs(trial):
    time.sleep(60)
    return 1.0


def sigkilled_once(trial):
    """Killed from outside on its first attempt (a marker file remembers), fine after."""
    marker = Path(trial.workdir).parent / f"killed-{trial.id}"
    if not marker.exists():
        marker.write_text("x")
        os.kill(os.getpid(), signal.SIGKILL)
    return 0.5


def always_sigkilled(trial):
    os.kill(os.getpid(), signal.SIGKILL)


def numpy_result(trial):
    trial.report(np.int64(0), value=np.float32(0.5), other=np.array(2.0))
    return np.float64(0.75)


def reports_twice(trial):
    """Steps out of order and one step reported twice, across flushes."""
    trial.report(2, value=2.0)
    trial.flush()
    trial.report(0, value=0.0)
    trial.report(2, value=99.0)  # a repeat: the first report of a step stands
    trial.flush()
    trial.report(1, value=1.0)
    trial.report(1, value=-1.0)
    return 3.0


def slow(trial, *, x=Float(0.0, 1.0, default=0.5)):
    for step in range(5):
        time.sleep(0.02)
        trial.report(step, value=x * step)
    return x


@pursuit.method(source="ours")
def scaled(trial, *, width=Int(4, 256, log=True, default=16, scale="params"),
           lr=Float(0.01, 1.0, log=True, default=0.1)):
    """A loss that falls as width^-0.5 toward 0.1, best at lr = 0.1; minimize."""
    noise = 0.002 * np.random.default_rng(trial.seed + 7 * width).standard_normal()
    return (0.1 + 2.0 * width**-0.5) * (1 + 0.2 * math.log10(lr / 0.1) ** 2) + noise


def thread_pools(trial):
    """How many threads the numerical libraries in this worker would use."""
    from threadpoolctl import threadpool_info

    return {"value": float(max(i["num_threads"] for i in threadpool_info())),
            "omp": float(os.environ.get("OMP_NUM_THREADS", "0"))}


LONG_CURVE = 120_000


@pursuit.method(source="ours")
def long_curve(trial, *, lr=Float(0.1, 1.0, default=0.5)):
    """A learning curve of LONG_CURVE steps (a long training run logged every step)."""
    for step in range(LONG_CURVE):
        trial.report(step, value=lr * step / LONG_CURVE)
    return lr


@pursuit.method
def named_like_columns(trial, *, x=Float(0.0, 1.0, default=0.5)):
    """Metrics and a cost named like the results table's own columns."""
    trial.report_cost(wall_seconds=123.0)
    return {"error": 0.1 + x * trial.seed / 100, "seed": 99.0, "dial.x": 7.0}


def marks_its_workdir(trial):
    """Goes into its work directory (as methods that resume from checkpoints do), and
    leaves a mark there."""
    os.chdir(trial.workdir)
    Path("mark").write_text(str(trial.id))
    return float(trial.id)


class CustomStop(BaseException):
    """A BaseException of a method's own, not an Exception."""


def raises_keyboard_interrupt(trial):
    raise KeyboardInterrupt("pressed inside the method")


def raises_base_exception(trial):
    raise CustomStop("a stop of the method's own")


def raises_generator_exit(trial):
    raise GeneratorExit("closed")


def forks_and_returns(trial):
    """Its forked child returns (a child must end with os._exit) while the parent waits."""
    child = os.fork()
    if child == 0:
        return 2.0
    os.waitpid(child, 0)
    return 1.0


def forks_and_reports(trial):
    """Its forked child reports on the engine's pipe, then ends as a child should."""
    child = os.fork()
    if child == 0:
        trial.report(0, value=1.0)
        trial.flush()
        os._exit(0)
    os.waitpid(child, 0)
    return 1.0


def forks_and_returns_late(trial):
    """Its forked child returns after the method has, while the worker runs the next trial."""
    if os.fork() == 0:
        time.sleep(0.45)
        return 2.0
    time.sleep(0.3)
    return 1.0


def garbles_its_pipe(trial):
    """Writes bytes that are no message into the pipe to the engine, then runs on."""
    trial._channel._conn.send_bytes(b"not a message")
    time.sleep(60)
    return 1.0


def naps(trial):
    """Marks its work directory, then sleeps a few seconds (a trial to stop mid-run)."""
    (trial.workdir / f"napping-{os.getpid()}").write_text(str(trial.id))
    time.sleep(2)
    return 1.0


def naps_long(trial):
    """As ``naps``, for a minute."""
    (trial.workdir / f"napping-{os.getpid()}").write_text(str(trial.id))
    time.sleep(60)
    return 1.0


def step_past_64_bits(trial):
    trial.report(2**63, value=1.0)
    return 1.0


def step_past_32_bits(trial):
    trial.report(2**31, value=1.0)
    return 1.0


def error_with_nul_and_surrogate(trial):
    raise ValueError("bad\x00byte in /data/\udcff.bin")


def long_metric_name(trial):
    return {"value": 1.0, "m" * 101: 2.0}
