"""The verdict: the leaderboard's answer in words, from the same numbers."""

import math

from test_stats import frame

from pursuit.analysis.stats import leaderboard
from pursuit.overview import config_text, verdict


def board_of(rows, target=0.9):
    return leaderboard(frame(rows), metric="value", direction="maximize", target=target,
                       seeds=3)


def test_a_clear_winner_is_named_with_its_margin_interval_seeds_and_corrected_p():
    rows = [("base", True, "paper", "{}", "completed", v) for v in (0.80, 0.81, 0.79)]
    rows += [("ours", False, "ours", '{"a":1}', "completed", v) for v in (0.95, 0.96, 0.94)]
    board = board_of(rows)
    text = verdict(board, "acc")
    row = board.methods.set_index("method").loc["ours"]
    assert text.startswith("ours (a=1) scores acc 0.95")
    assert f"beats the best baseline by {abs(row['diff']):.3g}" in text
    assert f"{row['diff_lo']:.3g} to {row['diff_hi']:.3g}" in text
    assert "3 seeds" in text and f"p = {row['p_holm']:.2g}" in text
    assert "past target 0.9, but the target is not reached until" in text  # unverified


def test_a_difference_within_noise_is_said_to_be_indistinguishable():
    rows = [("base", True, "paper", "{}", "completed", v) for v in (0.80, 0.84, 0.82)]
    rows += [("ours", False, "ours", '{"a":1}', "completed", v) for v in (0.81, 0.86, 0.82)]
    text = verdict(board_of(rows), "acc")
    assert "cannot be told apart from the best baseline" in text
    assert "not reached (gap" in text


def test_nothing_to_claim_says_why():
    assert verdict(board_of([("base", True, "p", "{}", "failed", math.nan)]), "acc") == \
        "No trial has completed yet: nothing can be claimed."
    two = [("base", True, "p", "{}", "completed", 0.8)] * 2
    assert "No configuration has its 3 seeds completed yet" in verdict(board_of(two), "acc")


def test_a_baseline_leader_is_called_the_best_baseline():
    rows = [("base", True, "paper", '{"k":7}', "completed", v) for v in (0.95, 0.96, 0.94)]
    text = verdict(board_of(rows), "acc")
    assert text.startswith("base (k=7)") and "it is the best baseline" in text


def test_configurations_read_as_on_the_leaderboard():
    assert config_text('{"C":1.0,"kernel":"rbf"}') == "C=1 kernel=rbf"
    assert config_text({"C": 1.0}) == "C=1" and config_text(None) == "—"
    assert config_text("{}") == "(no dials)"
