"""The charlm example: its corpus splits by file, the n-gram model computes interpolated
Kneser-Ney as written, each net learns and a seed fixes its run, and the goal walks
its stages through the real engine.

Tiny dials (a few thousand characters, nets of width 32) keep the file fast; the nets'
checks are those of fixed seeds, so they are exact, not statistical.
"""

import importlib
import math
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import pursuit
from pursuit.store import MemoryStore

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "charlm"
if str(EXAMPLE) not in sys.path:
    sys.path.insert(0, str(EXAMPLE))
corpus = importlib.import_module("corpus")
ngram = importlib.import_module("ngram")

# Dials that make a net's run take about a second and still learn at seed 0: 8,192
# characters (2 blocks of the training text) seen 4 times over 50 steps.
TINY_NET = {"layers": 1, "width": 32, "steps": 50, "data": 0.002, "epochs": 4.0, "lr": 1e-2}


@pytest.fixture
def torch():
    """PyTorch on one thread, as in a worker of a 2-core machine (two threads on a busy
    machine can make these tiny runs ten times slower); given back afterwards."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(threads)


def run_inline(entry, dials, seeds=1):
    """The trials of ``entry`` at ``dials`` over ``seeds`` seeds, run by the engine inline
    into a memory store: [(seed, result, costs, [(step, bpc)])]."""
    goal = pursuit.Goal(name="one", metric="bpc", direction="minimize", seeds=seeds,
                        budget={"max_trials": seeds},
                        methods=[{"entry": entry, "dials": dials, "search": False}])
    store = MemoryStore()
    pursuit.run(goal, store, "inline", workdir="/nonexistent-unused")
    runs = []
    for trial in sorted(store.trials(store.goal_id("one")), key=lambda t: t.seed):
        assert trial.state.value == "completed", trial.error
        curve = [(step, value) for _, step, name, value in store.curve(trial.id) if name == "bpc"]
        runs.append((trial.seed, trial.values["bpc"], trial.costs, curve))
    return runs


# ------------------------------------------------------------------------------ corpus
def test_the_corpus_is_the_standard_library_split_by_file():
    source = corpus.load()
    files = corpus.stdlib_files()
    assert files == sorted(files) and source.files == len(files) > 50
    texts = [f.read_text(encoding="utf-8", errors="replace") for f in files]
    assert "".join(source.vocab[c] for c in source.val) == "\x00".join(texts[::10])
    assert len(source.train) == len("\x00".join(t for i, t in enumerate(texts) if i % 10))
    assert source.chars > 1_000_000 and corpus.load() is source  # read once per process
    # The validation sample: the same characters for every method.
    windows, positions = corpus.eval_windows(source), corpus.eval_positions(source)
    assert windows.shape == (corpus.EVAL_WINDOWS, corpus.CONTEXT + 1)
    assert np.array_equal(windows[:, 1:].ravel(), source.val[positions])
    # A share of the training text: whole blocks, chosen by the seed, all of it at 1.
    part = corpus.train_subset(source, 0.01, seed=0)
    assert len(part) % corpus.BLOCK == 0 and 0.009 < len(part) / len(source.train) < 0.011
    assert np.array_equal(part, corpus.train_subset(source, 0.01, seed=0))
    assert not np.array_equal(part, corpus.train_subset(source, 0.01, seed=1))
    assert corpus.train_subset(source, 1.0, seed=5) is source.train


# ------------------------------------------------------------------------------ n-grams
def kneser_ney_by_hand(train, order, discount, vocab, history, w):
    """P(w | history) by the textbook recursion, with Python strings: at the top order
    c(g) counts g in ``train``; below it, c(g) counts the distinct characters seen
    before g. P_n(w | h) = (max(c(hw) - D, 0) + D * #{x: c(hx) > 0} * P_{n-1}(w | h[1:]))
    / sum_x c(hx), or P_{n-1} where h was never followed; P_0 = 1 / V."""

    def count(g, top):
        places = [i for i in range(len(train) - len(g) + 1) if train.startswith(g, i)]
        return len(places) if top else len({train[i - 1] for i in places if i > 0})

    def p(n):
        if n == 0:
            return 1 / len(vocab)
        h = history[len(history) - (n - 1):] if n > 1 else ""
        counts = {x: count(h + x, n == order) for x in vocab}
        total, seen = sum(counts.values()), sum(c > 0 for c in counts.values())
        lower = p(n - 1)
        return lower if total == 0 else \
            (max(counts[w] - discount, 0) + discount * seen * lower) / total

    return p(order)


def bits(train, val, order, discount):
    source = corpus.from_text(train, val)
    model = ngram.KneserNey(source.train, order, discount, len(source.vocab))
    return ngram.bits_per_char(model, source.val, np.arange(order - 1, len(val)))


def test_kneser_ney_on_a_toy_string_matches_the_formula_worked_by_hand():
    # train "abcab", D = 0.5, bigrams. Top order: c(ab) = 2, c(bc) = c(ca) = 1. Below it,
    # each of a, b, c follows one distinct character: P_1 = (1 - 0.5 + 0.5 * 3 / 3) / 3
    # = 1/3 for each. So P(b | a) = (2 - 0.5 + 0.5 * 1 * 1/3) / 2 = 5/6, and
    # P(c | b) = P(a | c) = (1 - 0.5 + 0.5 * 1 * 1/3) / 1 = 2/3.
    expected = -(math.log2(5 / 6) + 2 * math.log2(2 / 3)) / 3
    assert bits("abcab", "abca", order=2, discount=0.5) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("discount", [0.3, 0.75, 1.0])
def test_kneser_ney_matches_the_textbook_recursion(order, discount):
    train = "the cat sat on the mat; the hat sat on the cat. a bat? the end"
    val = "the bat sat on a hat; that cat ate the rat. zz"  # 'z' never seen in training
    vocab = sorted(set(train) | set(val))
    by_hand = [kneser_ney_by_hand(train, order, discount, vocab, val[:t], val[t])
               for t in range(order - 1, len(val))]
    expected = -float(np.mean(np.log2(by_hand)))
    assert bits(train, val, order, discount) == pytest.approx(expected, rel=1e-12)


def test_ngrams_learn_from_more_context_and_more_data():
    source = corpus.load()
    positions = corpus.eval_positions(source)
    small, large = (corpus.train_subset(source, share, seed=0) for share in (0.01, 0.04))
    scores = {(order, len(text)): ngram.bits_per_char(
        ngram.KneserNey(text, order, 0.75, len(source.vocab)), source.val, positions)
        for order in (1, 3) for text in (small, large)}
    uniform = math.log2(len(source.vocab))
    assert scores[1, len(small)] < uniform
    assert scores[3, len(small)] < scores[1, len(small)] - 1.0
    assert scores[3, len(large)] < scores[3, len(small)]


def test_the_ngram_method_reports_what_it_counted():
    [(_, result, costs, curve)] = run_inline("ngram:ngram", {"order": 3, "data": 0.01})
    assert 2.0 < result < 4.0 and curve == []  # counted in one pass: no curve
    assert costs["tokens_seen"] == costs["unique_tokens_seen"] == 10 * corpus.BLOCK
    assert costs["corpus_chars"] == corpus.load().chars and "flops" not in costs


# ------------------------------------------------------------------------------ nets
@pytest.mark.parametrize("entry", ["rnn:rnn", "transformer:transformer"])
def test_each_net_learns_and_a_seed_fixes_its_run(torch, entry):
    runs = run_inline(entry, TINY_NET, seeds=2)
    (_, result, costs, curve), (_, other, _, other_curve) = runs
    steps = [step for step, _ in curve]
    assert steps == [25, 50] and curve[-1][1] == result
    uniform = math.log2(len(corpus.load().vocab))  # about what an untrained net scores
    assert result < curve[0][1] < uniform and result < uniform - 2, curve
    # 50 steps, each of a fiftieth of 4 passes over the windows the share holds.
    windows = (len(corpus.train_subset(corpus.load(), 0.002, seed=0)) - 1) // corpus.CONTEXT
    assert costs["tokens_seen"] == 50 * round(4 * windows / 50) * corpus.CONTEXT
    assert costs["unique_tokens_seen"] == windows * corpus.CONTEXT
    assert costs["flops"] == 6 * costs["params"] * costs["tokens_seen"]
    # The same seed gives the same run, point for point; another seed another run.
    [(_, again, _, again_curve)] = run_inline(entry, TINY_NET)
    assert again == result and again_curve == curve
    assert other != result and other_curve != curve


# ------------------------------------------------------------------------------ the goal
def test_the_goal_file_asks_for_bits_per_character_in_trials_only():
    goal = pursuit.load_goal(EXAMPLE / "goal.yaml")
    assert (goal.metric, goal.direction) == ("bpc", "minimize") and 1.0 < goal.target < 2.07
    assert goal.seeds in (2, 3) and goal.trial_timeout
    assert goal.budget.max_trials and goal.budget.compute_seconds is None \
        and goal.budget.wall_seconds is None
    methods = {m.name: m for m in goal.resolved_methods()}
    assert {name: m.baseline for name, m in methods.items()} == \
        {"ngram": True, "rnn": True, "transformer": False}
    assert all(m.source for m in methods.values())
    assert {d: dial.scale for d, dial in methods["ngram"].dials.items()} == \
        {"order": None, "discount": None, "data": "data"}
    for name in ("rnn", "transformer"):
        roles = {d: dial.scale for d, dial in methods[name].dials.items() if dial.scale}
        assert roles == {"layers": "params", "width": "params", "steps": "steps",
                         "data": "data", "epochs": "epochs"}


def test_the_goal_walks_its_stages_through_the_engine(torch, tmp_path):
    """A tiny goal through the real engine and worker processes: baselines, a round of
    n-gram search, its confirmation, and the leader's ladder over its data dial."""
    optuna = pytest.importorskip("optuna")
    grid = {"order": [2, 3, 4], "discount": [0.6, 0.8, 0.9], "data": [0.02, 0.04, 0.08]}
    goal = pursuit.Goal(
        name="charlm-tiny", metric="bpc", direction="minimize", target=1.0, seeds=2,
        budget={"max_trials": 24}, trial_timeout=120,
        methods=[{"entry": "ngram:ngram", "dials": {"order": 3, "data": 0.02}},
                 {"entry": "rnn:rnn", "dials": TINY_NET, "search": False},
                 {"entry": "transformer:transformer", "dials": TINY_NET, "search": False}])
    url = f"sqlite:///{tmp_path / 'c.db'}"
    [summary] = pursuit.run(goal, url, workers=2, workdir=tmp_path / "work",
                            sampler=optuna.samplers.GridSampler(grid, seed=0),
                            policy=pursuit.Policy(search_round=4))
    assert not summary.reached and summary.reason.startswith("budget spent")
    with pursuit.open(url) as results:
        frame = results.results()
        assert (frame["state"] == "completed").all(), frame["error"].dropna().tolist()
        stages = Counter(frame["stage"])
        assert stages["baselines"] == 6 and stages["search"] >= 4 and stages["confirm"] >= 2
        assert "verify" not in stages  # no claim came near 1.0
        # The ladder stepped the leading n-grams' share of data by x1/4 .. x4 (within
        # [0.01, 1]) at the leader's claim seeds, its other dials held.
        ladder = frame[frame["stage"] == "ladder"]
        assert len(ladder) >= 4 and set(ladder["method"]) == {"ngram"}
        assert ladder[["dial.order", "dial.discount"]].nunique().tolist() == [1, 1]
        assert set(ladder["seed"]) <= {0, 1, 2} and ladder["dial.data"].nunique() >= 2
        by_share = ladder.groupby("dial.data")["bpc"].mean()
        assert by_share.iloc[-1] < by_share.iloc[0]  # more text, fewer bits
        [fit] = results.ladder()  # the law fitted to the rungs, and where it meets 1.0
        assert (fit["method"], fit["dial"]) == ("ngram", "data") and len(fit["rungs"]) >= 3
        assert fit["law"].startswith("bpc ≈") and fit["forecast"]["target"] == 1.0
        board = results.leaderboard()
        assert board.progress["best_method"] == "ngram"
