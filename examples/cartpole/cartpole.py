"""What the three CartPole methods share: the environment, seeding, networks, evaluation.

Every method is scored the same way: its greedy policy (the action with the highest
logit or Q-value) plays ``EVAL_EPISODES`` episodes that start from the fixed seeds
``EVAL_SEED``, ``EVAL_SEED + 1``, ...: the same episodes for every trial, so the spread
over trial seeds is the spread of training alone. A trial's result is its last
evaluation, at the end of training (not its best one, which would flatter it).
"""

import gymnasium as gym
import numpy as np
import torch
from torch import nn

import pursuit

ENV = "CartPole-v1"  # 500 steps at most; solved at a mean return of 475 (its reward_threshold)
EVAL_SEED = 1_000_000  # evaluation episodes start from seeds EVAL_SEED, EVAL_SEED + 1, ...
EVAL_EPISODES = 10  # greedy episodes per evaluation
# Environment steps between evaluations (the learning curve's points). A power of two:
# past step 128 the engine tells its pruner only steps on a grid (64 per doubling, see
# pursuit.search.pruner_step); multiples of 4,096 are on it up to step 524,288, while
# multiples of 5,000, say, are never on it, and such a curve would never be pruned.
EVAL_EVERY = 4_096


def start(trial, envs=1):
    """Seed torch, NumPy and ``random`` with the trial's seed, train on one thread, and
    make ``envs`` environments reset from seeds drawn from it: a seed fixes the run."""
    torch.set_num_threads(1)  # one trial per worker; one thread is also deterministic
    trial.seed_everything()
    rng = np.random.default_rng(trial.seed)
    made = []
    for env_seed in rng.integers(2**31, size=envs):
        env = gym.make(ENV)
        env.reset(seed=int(env_seed))
        made.append(env)
    return made, rng


def mlp(sizes, activation=nn.ReLU):
    """Linear layers of the given sizes with ``activation`` between them."""
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


@torch.no_grad()
def sample(policy, obs, rng):
    """One action per row of ``obs``, drawn from the softmax of ``policy``'s logits with
    NumPy's ``rng``."""
    cdf = torch.softmax(policy(torch.as_tensor(obs)), -1).cumsum(-1).numpy()
    draws = rng.random((len(cdf), 1))
    return np.minimum((draws > cdf).sum(1), cdf.shape[1] - 1)


@torch.no_grad()
def evaluate(policy, episodes=EVAL_EPISODES):
    """Mean return of ``policy`` (observations -> one score per action), acting greedily,
    over the fixed evaluation episodes, played side by side."""
    envs = [gym.make(ENV) for _ in range(episodes)]
    obs = [env.reset(seed=EVAL_SEED + i)[0] for i, env in enumerate(envs)]
    returns = np.zeros(episodes)
    live = list(range(episodes))
    while live:
        actions = policy(torch.as_tensor(np.array([obs[i] for i in live]))).argmax(1)
        for i, action in zip(list(live), actions.tolist(), strict=True):
            obs[i], reward, terminated, truncated, _ = envs[i].step(action)
            returns[i] += reward
            if terminated or truncated:
                live.remove(i)
    return float(returns.mean())


class Curve:
    """The learning curve: evaluates every ``EVAL_EVERY`` environment steps, reports the
    mean return, and ends the trial when the engine's early-stopping rule says so."""

    def __init__(self, trial, policy):
        self.trial, self.policy = trial, policy
        self.last_step, self.value = None, None

    def __call__(self, step):
        """Call with the environment steps taken so far, as often as they change: the
        curve's points are at multiples of EVAL_EVERY."""
        if self.last_step is None or step // EVAL_EVERY > self.last_step // EVAL_EVERY:
            self._evaluate(step)
            if self.trial.should_stop():
                raise pursuit.Pruned()

    def final(self, step):
        """The mean return at the end of training: the trial's result."""
        if step != self.last_step:
            self._evaluate(step)
        return {"mean_return": self.value}

    def _evaluate(self, step):
        self.last_step, self.value = step, evaluate(self.policy)
        self.trial.report(step, mean_return=self.value)
