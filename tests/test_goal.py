import textwrap

import pytest

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
