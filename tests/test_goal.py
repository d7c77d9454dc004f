import importlib.util
import json
import math
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pursuit import Goal, GoalError, load_goal
from pursuit.goal import parse_goal

GOOD = """\
name: toy
metric: value
direction: maximize
target: 0.9
methods:
  - sample_methods:quadratic
  - entry: sample_methods:curve
    dials: {steps: 5}
"""


def write(tmp_path, text):
    path = tmp_path / "goal.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_good_goal_loads_with_methods_and_defaults(tmp_path):
    goal = load_goal(write(tmp_path, GOOD))
    methods = goal.resolved_methods()
    assert [m.name for m in methods] == ["quadratic", "curve"]
    assert methods[1].defaults() == {"lr": 0.01, "steps": 5}
    assert goal.seeds == 3 and goal.budget.max_trials == 100
    assert methods[0].source == "Test et al. 2020" and methods[0].baseline


@pytest.mark.parametrize("text, line, words", [
    ("name: toy\nmetric: value\ndirection: up\nmethods: [sample_methods:quadratic]\n",
     3, ["direction", "'minimize' or 'maximize'", "'up'"]),
    ("name: toy\nmetric: value\ndirection: maximize\ntarget: high\n"
     "methods: [sample_methods:quadratic]\n", 4, ["target", "number", "'high'"]),
    ("name: toy\ndirection: maximize\nmethods: [sample_methods:quadratic]\n",
     1, ["metric", "required", "found nothing"]),
    ("name: toy\nmetric: v\ndirection: maximize\ncolour: red\n"
     "methods: [sample_methods:quadratic]\n", 4, ["colour", "not permitted"]),
    ("name: toy\nmetric: v\ndirection: maximize\nbudget:\n  max_trials: -3\n"
     "methods: [sample_methods:quadratic]\n", 5, ["budget.max_trials", "greater than 0"]),
    ("name: toy\nmetric: v\nmetric: w\ndirection: maximize\n"
     "methods: [sample_methods:quadratic]\n", 3, ["metric", "twice"]),
    ("name: toy\nmetric: v\ndirection: maximize\nmethods:\n  - nosuchmodule:f\n",
     5, ["cannot import module 'nosuchmodule'"]),
    ("name: toy\nmetric: v\ndirection: maximize\nmethods:\n  - sample_methods:nothere\n",
     5, ["has no 'nothere'"]),
    ("name: toy\nmetric: v\ndirection: maximize\nmethods:\n  - entry: sample_methods:curve\n"
     "    dials: {lr: 5.0}\n", 5, ["dial 'lr'", "[0.001, 1.0]", "5.0"]),
    ("name: toy\nmetric: v\ndirection: maximize\nmethods:\n  - entry: sample_methods:curve\n"
     "    dials: {depth: 3}\n", 5, ["no dial 'depth'", "'lr'"]),
    ("name: toy\nmetric: v\ndirection: maximize\nmethods:\n  - sample_methods:quadratic\n"
     "  - sample_methods:quadratic\n", 4, ["two methods are named 'quadratic'"]),
    ("name: toy\nmetric: [v\n", 3, ["not valid YAML", "on line 2"]),
    ("- just\n- a list\n", 1, ["mapping"]),
    ("name: toy\nmetric: v\ndirection: maximize\nmethods: []\n", 4, ["methods", "at least 1"]),
    ("name: toy\nmetric: v\ndirection: maximize\nmethods: [sample_methods:quadratic]\n"
     "subgoals:\n  - name: sub\n    metric: 3x\n    methods: [sample_methods:curve]\n",
     7, ["subgoals.0.metric"]),
    # hostile files (T16): each a clear error at its line, never a RecursionError
    pytest.param("name: toy\nmetric: v\ndirection: maximize\n"
                 "methods: [sample_methods:quadratic]\nstatement: " + "[" * 5000 + "]" * 5000
                 + "\n", 5, ["nested more than 100 levels deep"], id="5000-deep-flow"),
    pytest.param("name: toy\nmetric: v\ndirection: maximize\n"
                 "methods: [sample_methods:quadratic]\nstatement:\n"
                 + "".join(" " * i + "- \n" for i in range(0, 400, 2)), 105,
                 ["nested more than 100 levels deep"], id="200-deep-block"),
    pytest.param("name: toy\nstatement: &s [1, *s]\n", 2,
                 ["alias *s is used inside the node it names"], id="recursive-alias"),
    pytest.param("name: toy\nmetric: v\ndirection: maximize\nstatement: a\x00b\n", 4,
                 ["not valid YAML", "#x0000"], id="nul-character"),
    pytest.param("shared: &d {lr: 0.1, lr: 0.2}\nname: toy\n", 1,
                 ["field 'lr' appears twice"], id="twice-in-an-anchor"),
])
def test_bad_goal_names_file_line_and_field(tmp_path, text, line, words):
    path = write(tmp_path, text)
    with pytest.raises(GoalError) as caught:
        load_goal(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: "), message
    for word in words:
        assert word in message


def test_missing_file_is_a_goal_error(tmp_path):
    with pytest.raises(GoalError, match="cannot read"):
        load_goal(tmp_path / "nope.yaml")


def test_a_goal_file_that_is_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "goal.yaml"
    path.write_bytes(b"name: toy\nmetric: v\nstatement: caf\xe9\n")  # Latin-1, not UTF-8
    with pytest.raises(GoalError) as caught:
        load_goal(path)
    assert str(caught.value).startswith(f"{path}:3: not UTF-8 text: byte 0xe9")


def test_anchors_and_aliases_of_sane_size_load():
    goal = parse_goal(GOOD.replace("dials: {steps: 5}", "dials: &shared {steps: 5}")
                      + "  - entry: sample_methods:curve\n    name: again\n    dials: *shared\n")
    assert [m.defaults()["steps"] for m in goal.resolved_methods()[1:]] == [5, 5]


def test_a_large_value_is_quoted_short_in_an_error():
    """An error quotes what it found, cut short: a value made large by aliases is never
    spelled out in full (that alone would take as long as the alias bomb)."""
    text = ("big: &big [" + ", ".join(["x" * 50] * 2000) + "]\nname: toy\nmetric: v\n"
            "direction: maximize\nstatement: [*big, *big, *big, *big]\n"
            "methods: [sample_methods:quadratic]\n")
    with pytest.raises(GoalError) as caught:
        parse_goal(text)
    assert "field 'statement'" in str(caught.value) and len(str(caught.value)) < 1000


def test_subgoals_inherit_direction_and_budget():
    goal = parse_goal(GOOD + "budget: {max_trials: 7}\nsubgoals:\n  - name: part\n"
                      "    metric: value\n    methods: [sample_methods:constant]\n")
    [sub] = goal.subgoals
    assert sub.direction == "maximize" and sub.budget.max_trials == 7
    assert sub.resolved_methods()[0].name == "constant"


def test_goal_from_python_with_method_objects():
    import sample_methods

    goal = Goal(name="py", metric="value", direction="maximize",
                methods=[sample_methods.quadratic, sample_methods.constant])
    assert [m.name for m in goal.resolved_methods()] == ["quadratic", "constant"]
    assert goal.spec()["methods"][0]["defaults"] == {"x": 3.0}
    assert goal.searchable(goal.resolved_methods()[0])
    assert not goal.searchable(goal.resolved_methods()[1])  # no dials, nothing to search


odd_scalars = st.one_of(
    st.sampled_from([".nan", ".inf", "-.inf", "1e400", "-0", "0x10", "~", "yes", "''", "[]",
                     "{}", "'1.0'", "9" * 40, "1_000", "2.5e-324", "!!binary aGk=", "&a 1",
                     "'\\u0000'"]),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers().map(str),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8).map(json.dumps),
)


@settings(max_examples=200, deadline=None)
@given(field=st.sampled_from(["target", "seeds", "trial_timeout", "budget.max_trials",
                              "budget.wall_seconds", "dials.lr", "dials.steps", "name",
                              "metric"]), value=odd_scalars)
def test_odd_values_in_a_goal_file_give_a_goal_error_or_a_valid_goal(field, value):
    """T6 for goal files: no odd value crashes the loader or slips past validation."""
    lines = {"name": "toy", "metric": "value", "direction": "maximize"}
    body = "\n".join(f"{k}: {v}" for k, v in lines.items() if k != field)
    if field in ("name", "metric"):
        body += f"\n{field}: {value}"
    elif field.startswith("budget."):
        body += f"\nbudget:\n  {field.split('.')[1]}: {value}"
    elif field.startswith("dials."):
        body += "\n"
    else:
        body += f"\n{field}: {value}"
    dial = f"\n    dials: {{{field.split('.')[1]}: {value}}}" if field.startswith("dials.") else ""
    body += f"\nmethods:\n  - entry: sample_methods:curve{dial}\n"
    try:
        goal = parse_goal(body, file="odd.yaml")
    except GoalError as error:
        assert str(error).startswith("odd.yaml:")
        return
    methods = goal.resolved_methods()
    defaults = methods[0].defaults()
    assert 1e-3 <= defaults["lr"] <= 1.0 and 1 <= defaults["steps"] <= 20
    assert goal.target is None or math.isfinite(goal.target)
    assert goal.seeds >= 1


# ------------------------------------------------------------- sampler and pruner
SEARCHED = GOOD + "seeds: 2\n"


@pytest.mark.parametrize("lines, sampler, pruner", [
    ("sampler: random\n", ("random", {}), None),
    ("sampler: {name: tpe, args: {n_startup_trials: 5}}\n"
     "pruner: {name: median, args: {n_warmup_steps: 2}}\n",
     ("tpe", {"n_startup_trials": 5}), ("median", {"n_warmup_steps": 2})),
    ("pruner:\n  name: percentile\n  args:\n    percentile: 25.0\n", None,
     ("percentile", {"percentile": 25.0})),
    ("pruner: none\n", None, ("none", {})),
])
def test_a_goal_file_names_its_sampler_and_pruner(lines, sampler, pruner):
    goal = parse_goal(SEARCHED + lines + "subgoals:\n  - name: part\n    metric: value\n"
                      "    methods: [sample_methods:constant]\n")
    for spec, expected in ((goal.sampler, sampler), (goal.pruner, pruner)):
        assert (None if spec is None else (spec.name, spec.args)) == expected
    [sub] = goal.subgoals  # a sub-goal searches as its parent does
    assert (sub.sampler, sub.pruner) == (goal.sampler, goal.pruner)
    stored = goal.spec()
    assert stored["sampler"] == (None if sampler is None else
                                 {"name": sampler[0], "args": sampler[1]})


@pytest.mark.parametrize("lines, line, words", [
    ("sampler: tpx\n", 10, ["field 'sampler.name'", "unknown sampler 'tpx'", "tpe, random"]),
    ("pruner:\n  name: medain\n", 11, ["field 'pruner.name'", "unknown pruner 'medain'",
                                       "median, percentile, hyperband"]),
    ("sampler:\n  name: tpe\n  args:\n    n_startup: 5\n", 12,
     ["field 'sampler.args'", "TPESampler takes no argument 'n_startup'", "n_startup_trials"]),
    ("sampler:\n  name: tpe\n  args: {n_startup_trials: many}\n", 12,
     ["field 'sampler.args'", "'n_startup_trials' must be int, got 'many'"]),
    ("sampler:\n  name: tpe\n  args: {n_startup_trials: yes}\n", 12,
     ["must be int, got True"]),
    ("sampler:\n  name: tpe\n  args: {gamma: 3}\n", 12,
     ["'gamma' takes a Python object", "pursuit.run(goal, sampler=...)"]),
    ("pruner:\n  name: percentile\n  args: {n_warmup_steps: 2}\n", 12,
     ["field 'pruner.args'", "PercentilePruner(n_warmup_steps=2) refused",
      "'percentile'"]),
    ("pruner:\n  name: median\n  args: {n_startup_trials: -1}\n", 12,
     ["MedianPruner(n_startup_trials=-1, n_warmup_steps=1) refused", "negative"]),
    ("pruner: {name: median, args: [2]}\n", 10, ["field 'pruner.args'", "dictionary"]),
    ("sampler: {name: tpe, argz: {}}\n", 10, ["field 'sampler.argz'", "not permitted"]),
    ("sampler: 3\n", 10, ["field 'sampler'", "a sampler is a name", "{name: ..., args:"]),
    ("sampler:\n  args: {seed: 1}\n", 10, ["field 'sampler.name'", "required"]),
    ("pruner: percentile\n", 10, ["field 'pruner'", "PercentilePruner", "'percentile'"]),
    ("pruner: {name: hyperband, args: {reduction_factor: 1}}\n", 10,
     ["field 'pruner.args'", "reduction_factor must be 2 or more, got 1"]),
])
def test_a_bad_sampler_or_pruner_names_the_field_and_line(lines, line, words):
    with pytest.raises(GoalError) as caught:
        parse_goal(SEARCHED + lines, file="goal.yaml")
    message = str(caught.value)
    assert message.startswith(f"goal.yaml:{line}: "), message
    for word in words:
        assert word in message, message


@pytest.mark.skipif(importlib.util.find_spec("cmaes") is not None,
                    reason="cmaes is installed here")
def test_a_sampler_whose_package_is_missing_is_refused_as_the_goal_loads():
    with pytest.raises(GoalError) as caught:
        parse_goal(SEARCHED + "sampler: {name: cmaes, args: {sigma0: 0.5}}\n",
                   file="goal.yaml")
    assert str(caught.value).startswith("goal.yaml:10: field 'sampler.name': ")
    assert "needs the package cmaes, which is not installed: pip install cmaes" in \
        str(caught.value)


@settings(max_examples=100, deadline=None)
@given(key=st.sampled_from(["sampler.n_startup_trials", "sampler.seed", "sampler.multivariate",
                            "pruner.n_warmup_steps", "pruner.reduction_factor"]),
       value=odd_scalars)
def test_odd_sampler_and_pruner_arguments_give_a_goal_error_or_ones_that_build(key, value):
    """Whatever a goal file gives as an argument is refused at its line, or builds."""
    from pursuit import search

    kind, arg = key.split(".")
    name = {"sampler": "tpe", "pruner": "hyperband" if arg == "reduction_factor" else
            "median"}[kind]
    text = SEARCHED + f"{kind}:\n  name: {name}\n  args:\n    {arg}: {value}\n"
    try:
        goal = parse_goal(text, file="odd.yaml")
    except GoalError as error:
        assert str(error).startswith("odd.yaml:")
        return
    import optuna

    built = search.of_goal(kind, getattr(goal, kind))
    assert isinstance(built, optuna.samplers.BaseSampler | optuna.pruners.BasePruner)


def test_a_goal_file_names_where_its_trials_run():
    goal = parse_goal(SEARCHED + "executor: {name: ray, address: auto, num_cpus: 2, "
                                 "num_gpus: 0.5, memory: 2000000000}\n", file="goal.yaml")
    spec = goal.executor
    assert (spec.name, spec.address, spec.num_cpus, spec.num_gpus, spec.memory) == \
        ("ray", "auto", 2.0, 0.5, 2_000_000_000)
    assert parse_goal(SEARCHED + "executor: inline\n", file="g.yaml").executor.name == "inline"
    assert parse_goal(SEARCHED, file="g.yaml").executor is None  # local processes


@pytest.mark.parametrize(("lines", "words"), [
    ("executor: slurm\n", ["field 'executor.name'", "'processes', 'inline' or 'ray'"]),
    ("executor: {name: processes, num_gpus: 1}\n", ["field 'executor'", "Ray's"]),
    ("executor: {name: ray, num_cpus: 0}\n", ["field 'executor.num_cpus'", "greater than 0"]),
])
def test_a_bad_executor_names_the_field_and_line(lines, words):
    with pytest.raises(GoalError) as caught:
        parse_goal(SEARCHED + lines, file="goal.yaml")
    message = str(caught.value)
    assert message.startswith("goal.yaml:10: "), message
    for word in words:
        assert word in message, message
