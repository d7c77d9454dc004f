"""The training loop both nets share: what they see, how they learn, how they are scored.

What a run sees, from its dials (``data``, ``epochs`` and ``steps`` are independent):

* ``data``: the share of the training text it may draw from (``corpus.train_subset``:
  that share of its 4,096-character blocks, chosen by the seed), cut into windows of
  ``CONTEXT + 1`` characters that overlap by one;
* ``epochs``: passes over those windows, each pass in a fresh order (the seed's); 0.5
  is half of them once, 4 is every one four times. Characters seen = epochs x unique;
* ``steps``: the optimizer updates those characters are spread over: each step takes
  ``round(windows seen / steps)`` windows (at least one). More steps at the same data
  and epochs is more, smaller updates for the same compute.

AdamW with a linear warm-up over the first 5% of the steps, then a cosine decay to a
tenth of ``lr``; gradients clipped to norm 1. Every ``EVAL_EVERY`` steps, and at the
end, the net is scored on the fixed validation sample (``corpus.eval_windows``) in bits
per character and the curve reported at that step: ``bpc`` (the goal's metric),
``train_bpc`` (the mean training loss since the last point), ``chars`` (characters
trained on so far) and ``epoch`` (passes done), so an analysis can read the loss
against steps, characters or passes. Every run reports at the same steps, so the
pruner compares like with like.

Costs, with every point (so a pruned run has them too): ``params`` (every parameter,
embeddings included, a tied weight once), ``flops`` = 6 x params x characters trained
on (forward and backward, as in Kaplan et al. 2020; attention's own FLOPs and the
evaluations left out), ``tokens_seen``, ``unique_tokens_seen`` (the distinct
windows drawn, in characters) and ``corpus_chars``.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F

import pursuit

import corpus

EVAL_EVERY = 25  # steps between validation points (and one at the end)


def windows_of(text: np.ndarray, context: int) -> np.ndarray:
    """``text`` cut into windows of ``context + 1`` codes, overlapping by one."""
    count = max(1, (len(text) - 1) // context)
    if len(text) < context + 1:
        raise ValueError(f"the training text ({len(text)} characters) is shorter than one "
                         f"window of {context + 1}")
    starts = np.arange(count) * context
    return np.stack([text[s:s + context + 1] for s in starts])


def schedule(step: int, steps: int, lr: float) -> float:
    warmup = max(1, steps // 20)
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


@torch.no_grad()
def bits_per_char(model: torch.nn.Module, windows: torch.Tensor) -> float:
    """Mean cross-entropy in bits of each window's last ``CONTEXT`` characters."""
    model.eval()
    losses = []
    for chunk in windows.split(32):
        logits = model(chunk[:, :-1])
        losses.append(F.cross_entropy(logits.transpose(1, 2), chunk[:, 1:], reduction="none"))
    model.train()
    return float(torch.cat(losses).mean()) / math.log(2)


def train(trial, model: torch.nn.Module, source: corpus.Corpus, *, data: float,
          epochs: float, steps: int, lr: float, weight_decay: float) -> float:
    """Train ``model`` on ``source`` as the dials say, reporting the curve and the costs;
    return the last validation bpc."""
    rng = np.random.default_rng(trial.seed)
    unique = windows_of(corpus.train_subset(source, data, trial.seed), corpus.CONTEXT)
    batch = max(1, round(epochs * len(unique) / steps))  # windows per step
    passes = math.ceil(steps * batch / len(unique))
    order = np.concatenate([rng.permutation(len(unique)) for _ in range(passes)])
    val = torch.from_numpy(corpus.eval_windows(source).astype(np.int64))
    params = sum(p.numel() for p in model.parameters())  # a tied weight counts once
    decayed = [p for p in model.parameters() if p.dim() >= 2]  # matrices, as in nanoGPT
    others = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decayed, "weight_decay": weight_decay},
                                   {"params": others, "weight_decay": 0.0}],
                                  lr=lr, betas=(0.9, 0.95))
    bpc, losses = math.nan, []
    for step in range(1, steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = schedule(step - 1, steps, lr)
        rows = torch.from_numpy(unique[order[(step - 1) * batch:step * batch]].astype(np.int64))
        loss = F.cross_entropy(model(rows[:, :-1]).transpose(1, 2), rows[:, 1:])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        if step % EVAL_EVERY and step < steps:
            continue
        bpc = bits_per_char(model, val)
        chars = step * batch * corpus.CONTEXT
        trial.report(step, bpc=bpc, train_bpc=float(np.mean(losses)) / math.log(2),
                     chars=chars, epoch=step * batch / len(unique))
        losses = []
        distinct = len(np.unique(order[:step * batch])) * corpus.CONTEXT
        trial.report_cost(corpus_chars=source.chars, tokens_seen=chars,
                          unique_tokens_seen=distinct, params=params,
                          flops=6.0 * params * chars)
        if not math.isfinite(bpc):
            raise FloatingPointError(f"the validation bpc is {bpc} at step {step}")
        if trial.should_stop():
            raise pursuit.Pruned()
    return bpc
