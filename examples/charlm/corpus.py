"""The corpus every charlm method reads: this Python's own standard library, as characters.

Built at run time from the machine's files, nothing downloaded:

* the files: ``Path(os.__file__).parent.glob("*.py")``, the top level of the standard
  library only, sorted by name (about 170 files and 4.7 MB on CPython 3.11; another
  Python version has other files, so record ``corpus_chars`` with each result);
* the split, by file: the files whose sorted index is a multiple of 10 are validation,
  the other nine in ten are training;
* the text: each file read as UTF-8 (undecodable bytes replaced), the files of each
  split joined with NUL, the one character no source file holds, so a model sees where
  a file ends; the vocabulary is every character of both splits (as in nanoGPT's
  character-level examples), each coded as one byte;
* the validation sample: ``EVAL_WINDOWS`` windows of ``CONTEXT + 1`` characters at
  evenly spaced, fixed places in the validation text; every method scores the same
  ``EVAL_WINDOWS * CONTEXT`` characters (the last ``CONTEXT`` of each window), so
  their bits per character compare. The nets see the window's earlier characters as
  context; the n-gram model sees the characters before each one in the text.

A process reads and codes the files once (``load``), so trials that share a worker do
not read them again.
"""

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VALIDATION_EVERY = 10  # files whose sorted index % 10 == 0 are validation
SEPARATOR = "\x00"  # joins the files of a split
CONTEXT = 128  # characters a net sees at once; also the length of a validation window
EVAL_WINDOWS = 64  # windows in the fixed validation sample (64 x 128 = 8,192 characters)
BLOCK = 4096  # a run given a fraction of the training text draws it in blocks this long


@dataclass(frozen=True)
class Corpus:
    train: np.ndarray  # uint8 codes of the training text
    val: np.ndarray  # uint8 codes of the validation text
    vocab: str  # the character of each code
    files: int  # source files read

    @property
    def chars(self) -> int:
        return len(self.train) + len(self.val)


def stdlib_files() -> list[Path]:
    return sorted(Path(os.__file__).parent.glob("*.py"))


@functools.cache
def load() -> Corpus:
    """The standard library's corpus, read and coded once per process."""
    files = stdlib_files()
    texts = [f.read_text(encoding="utf-8", errors="replace") for f in files]
    val = SEPARATOR.join(t for i, t in enumerate(texts) if i % VALIDATION_EVERY == 0)
    train = SEPARATOR.join(t for i, t in enumerate(texts) if i % VALIDATION_EVERY != 0)
    return from_text(train, val, files=len(files))


def from_text(train: str, val: str, *, files: int = 0) -> Corpus:
    """A corpus of the given texts (the tests use tiny ones)."""
    vocab = "".join(sorted(set(train) | set(val)))
    if len(vocab) > 256:
        raise ValueError(f"the corpus has {len(vocab)} distinct characters; at most 256 fit a byte")
    table = np.zeros(0x110000, dtype=np.uint8)
    table[[ord(c) for c in vocab]] = np.arange(len(vocab))

    def encode(text: str) -> np.ndarray:
        points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        return table[points]

    return Corpus(encode(train), encode(val), vocab, files)


def train_subset(corpus: Corpus, fraction: float, seed: int) -> np.ndarray:
    """``fraction`` of the training text: that share of its ``BLOCK``-character blocks,
    spread over it and chosen by ``seed`` (all of it, in order, when ``fraction`` is 1)."""
    blocks = max(1, -(-len(corpus.train) // BLOCK))
    keep = max(1, round(fraction * blocks))
    if keep >= blocks:
        return corpus.train
    chosen = np.sort(np.random.default_rng(seed).choice(blocks, keep, replace=False))
    return np.concatenate([corpus.train[b * BLOCK:(b + 1) * BLOCK] for b in chosen])


def eval_windows(corpus: Corpus) -> np.ndarray:
    """The fixed validation sample: ``EVAL_WINDOWS`` rows of ``CONTEXT + 1`` codes; each
    row's last ``CONTEXT`` codes are the characters scored."""
    return corpus.val[eval_positions(corpus).reshape(EVAL_WINDOWS, CONTEXT)[:, :1] - 1
                      + np.arange(CONTEXT + 1)]


def eval_positions(corpus: Corpus) -> np.ndarray:
    """Where in ``corpus.val`` the scored characters lie, window by window; the first
    window starts ``CONTEXT`` characters in, so that an n-gram has context before it."""
    last = len(corpus.val) - CONTEXT - 1
    if last < 0:
        raise ValueError(f"the validation text ({len(corpus.val)} characters) is shorter "
                         f"than one window of {CONTEXT + 1}")
    starts = np.linspace(min(CONTEXT, last), last, EVAL_WINDOWS).astype(int)
    return (starts[:, None] + np.arange(1, CONTEXT + 1)).ravel()
