"""Interpolated Kneser-Ney character n-grams: counting only, no gradient, no torch.

For an n-gram g = h w (context h of n-1 characters, then w) the model of order K is

    P_n(w | h) = (max(c_n(h w) - D, 0) + D * T_n(h) * P_{n-1}(w | h')) / S_n(h)

with h' the context without its first character, P_0 = 1 / V (uniform over the
vocabulary), S_n(h) = sum of c_n(h .) over w and T_n(h) the number of w with
c_n(h w) > 0. At the top order c_K is the plain count; below it c_n(g) is the number
of distinct characters seen before g (the continuation count of Kneser & Ney). An
unseen context (S_n(h) = 0) leaves P_{n-1} as it is. One discount D serves every order
(Chen & Goodman's interpolated KN; their "modified" variant has three per order).

N-grams are keyed by a 64-bit rolling hash of their characters, so any order costs the
same; two distinct n-grams of one order share a key with odds near n^2 / 2^65 (below
1e-6 for the few million n-grams of this corpus).

Cost: no FLOPs are reported. Counting is sorting and comparing integers (order x
training characters keys, sorted once per order), not floating-point arithmetic, so
6·N·D has no counterpart; it reports ``ngrams_counted`` instead, beside the wall and
CPU seconds Pursuit measures.
"""

import numpy as np

import pursuit
from pursuit import Float, Int

import corpus

MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd: the rolling hash's multiplier


def rolling_hashes(codes: np.ndarray, order: int) -> list[np.ndarray]:
    """``keys[n][i]`` identifies the n characters ``codes[i:i+n]``, for n = 0 .. order."""
    x = codes.astype(np.uint64) + np.uint64(1)
    keys = [np.zeros(len(x) + 1, dtype=np.uint64)]  # the empty string, at every place
    for n in range(1, order + 1):
        h = keys[-1][:len(x) - n + 1] * MULTIPLIER + x[n - 1:]
        keys.append(h ^ (h >> np.uint64(29)))  # mix, so that keys of one length spread
    return keys


class KneserNey:
    """The counts of an interpolated Kneser-Ney model of ``order``, from ``codes``."""

    def __init__(self, codes: np.ndarray, order: int, discount: float, vocab_size: int):
        self.order, self.discount, self.vocab_size = order, discount, vocab_size
        keys = rolling_hashes(codes, order)
        self.levels = []  # per order n: (n-gram keys, counts, context keys, S, T)
        for n in range(1, order + 1):
            if n == order:  # plain counts of the top order
                grams, first, counts = np.unique(keys[n], return_index=True, return_counts=True)
            else:  # continuation counts: distinct (n+1)-grams that end in the n-gram
                _, longer = np.unique(keys[n + 1], return_index=True)
                grams, first, counts = np.unique(keys[n][longer + 1], return_index=True,
                                                 return_counts=True)
                first = longer[first] + 1
            contexts = keys[n - 1][first]  # each n-gram's first n-1 characters
            ctx, where = np.unique(contexts, return_inverse=True)
            sums = np.bincount(where, weights=counts)
            types = np.bincount(where).astype(float)
            self.levels.append((grams, counts.astype(float), ctx, sums, types))

    @staticmethod
    def _lookup(table: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
        """``values`` at ``queries`` in the sorted ``table``; 0 where a query is absent."""
        at = np.minimum(np.searchsorted(table, queries), len(table) - 1)
        return np.where(table[at] == queries, values[at], 0.0)

    def probabilities(self, text: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """P(text[t] | the order - 1 characters before it) for each t in ``positions``."""
        keys = rolling_hashes(text, self.order)
        p = np.full(len(positions), 1.0 / self.vocab_size)
        for n, (grams, counts, ctx, sums, types) in enumerate(self.levels, start=1):
            start = positions - n + 1  # where the n-gram ending at t begins
            count = self._lookup(grams, counts, keys[n][start])
            total = self._lookup(ctx, sums, keys[n - 1][start])
            distinct = self._lookup(ctx, types, keys[n - 1][start])
            mixed = (np.maximum(count - self.discount, 0.0)
                     + self.discount * distinct * p) / np.maximum(total, 1.0)
            p = np.where(total > 0, mixed, p)
        return p


def bits_per_char(model: KneserNey, text: np.ndarray, positions: np.ndarray) -> float:
    return float(-np.mean(np.log2(model.probabilities(text, positions))))


@pursuit.method(source="Kneser & Ney 1995; Chen & Goodman 1998", baseline=True)
def ngram(trial, *,
          order=Int(1, 12, default=5),  # characters in the longest n-gram counted
          discount=Float(0.05, 1.0, default=0.75),  # D, absolute discount at every order
          data=Float(0.01, 1.0, log=True, default=1.0, scale="data")):  # share of the training text
    """Count once over ``data`` of the training text, then score the validation sample
    (one pass, so there is no learning curve to report)."""
    source = corpus.load()
    train = corpus.train_subset(source, data, trial.seed)  # the seed picks the blocks (data < 1)
    model = KneserNey(train, order, discount, len(source.vocab))
    trial.report_cost(corpus_chars=source.chars, tokens_seen=len(train),
                      unique_tokens_seen=len(train), ngrams_counted=order * len(train))
    return bits_per_char(model, source.val, corpus.eval_positions(source))
