"""Methods the Ray executor's tests run; a module of its own so Ray workers import them."""

import os
import time
from pathlib import Path

import pursuit
from pursuit import Float


def node_of_this_worker():
    import ray

    return ray.get_runtime_context().get_node_id()


def lost_with_its_node(trial):
    """Naps until its node is taken away on its first attempt (a marker file remembers),
    and ends at once after; each attempt writes down the node it ran on."""
    (trial.workdir / f"node-{os.getpid()}").write_text(node_of_this_worker())
    trial.report(0, value=0.0)
    trial.flush()
    marker = trial.workdir.parent / f"began-{trial.id}"
    if not marker.exists():
        marker.write_text("x")
        time.sleep(120)
    trial.report(1, value=1.0)
    return 1.0


@pursuit.method(source="ours")
def dozes(trial, *, x=Float(0.0, 1.0, default=0.5)):
    """Runs 0.3 s, its worker's pid in a file while it runs (to tell whether an
    interrupted trial's worker outlived its engine)."""
    mark = trial.workdir / f"running-{os.getpid()}"
    mark.write_text(str(trial.id))
    for step in range(3):
        time.sleep(0.1)
        trial.report(step, value=x * step)
    mark.unlink()
    return x


def naps_for_a_minute(trial):
    (trial.workdir / f"running-{os.getpid()}").write_text(str(trial.id))
    time.sleep(60)
    return 1.0


def reads_beside(trial):
    """Opens a file by a path relative to the engine's working directory."""
    return float(Path("ray-input.txt").read_text())
