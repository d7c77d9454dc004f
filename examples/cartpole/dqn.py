"""DQN (Mnih et al. 2015): Q-learning with a replay buffer and a target network.

The agent acts epsilon-greedily on its Q-network, stores every transition, and fits
Q(s, a) to r + gamma * max_a' Q_target(s', a') on minibatches drawn from the buffer (Huber
loss, as the paper's clipped error). The target network is a copy of the Q-network,
refreshed before each round of updates. The paper's Atari settings (10M frames, 1M
transitions) are scaled down to CartPole as RL Baselines3 Zoo does (hyperparams/dqn.yml,
CartPole-v1): two hidden layers of 256, Adam at 2.3e-3, 50k steps, batches of 64,
128 updates every 256 steps, epsilon from 1 to 0.04 over the first 16% of the steps.
"""

import numpy as np
import torch
from cartpole import Curve, mlp, start
from torch import nn

import pursuit
from pursuit import Float, Int

GAMMA = 0.99  # discount
BATCH = 64  # transitions per update
LEARNING_STARTS = 1_000  # steps of acting before the first update
TRAIN_EVERY = 256  # steps between rounds of updates
UPDATES = 128  # updates per round (the target network is refreshed before each round)
EXPLORATION = 0.16  # share of the steps over which epsilon falls from 1 ...
FINAL_EPSILON = 0.04  # ... to this
MAX_GRAD_NORM = 10.0  # gradient clipping (Stable Baselines3's default for DQN)


class Replay:
    """The last ``size`` transitions, in NumPy arrays."""

    def __init__(self, size):
        self.obs = np.zeros((size, 4), np.float32)
        self.next_obs = np.zeros((size, 4), np.float32)
        self.actions = np.zeros(size, np.int64)
        self.rewards = np.zeros(size, np.float32)
        self.terminal = np.zeros(size, np.float32)  # 1 where the pole fell (no bootstrap)
        self.size, self.count = size, 0

    def add(self, obs, action, reward, next_obs, terminal):
        i = self.count % self.size
        self.obs[i], self.actions[i], self.rewards[i] = obs, action, reward
        self.next_obs[i], self.terminal[i] = next_obs, terminal
        self.count += 1

    def batch(self, rng, n):
        i = rng.integers(min(self.count, self.size), size=n)
        return [torch.as_tensor(a[i]) for a in
                (self.obs, self.actions, self.rewards, self.next_obs, self.terminal)]


@pursuit.method(source="Mnih et al. 2015; CartPole settings of RL Baselines3 Zoo",
                baseline=True)
def dqn(trial, *,
        lr=Float(1e-5, 1e-2, log=True, default=2.3e-3),  # Adam's step size
        # Units in each of the two hidden layers; the zoo's 256 is the widest searched:
        # an update costs about 2 ms on one core at 256, and there are steps / 2 of them.
        width=Int(16, 256, log=True, default=256, scale="params"),
        steps=Int(5_000, 200_000, log=True, default=50_000, scale="steps")):
    """Train a Q-network by DQN for ``steps`` environment steps."""
    [env], rng = start(trial)
    q = mlp([4, width, width, 2])
    target = mlp([4, width, width, 2])
    optimizer = torch.optim.Adam(q.parameters(), lr=lr, foreach=True)
    replay = Replay(min(steps, 100_000))  # the zoo's buffer holds 100k transitions
    curve = Curve(trial, q)
    curve(0)
    obs, _ = env.reset()
    for step in range(1, steps + 1):
        epsilon = max(FINAL_EPSILON, 1 - (1 - FINAL_EPSILON) * step / (EXPLORATION * steps))
        if rng.random() < epsilon:
            action = int(rng.integers(2))
        else:
            with torch.no_grad():
                action = int(q(torch.as_tensor(obs[None])).argmax())
        next_obs, reward, terminated, truncated, _ = env.step(action)
        # A cut at 500 steps is not the pole falling: it still bootstraps from next_obs.
        replay.add(obs, action, reward, next_obs, terminated)
        obs = env.reset()[0] if terminated or truncated else next_obs
        if step >= LEARNING_STARTS and step % TRAIN_EVERY == 0:
            target.load_state_dict(q.state_dict())
            for _ in range(UPDATES):
                o, a, r, o2, done = replay.batch(rng, BATCH)
                with torch.no_grad():
                    y = r + GAMMA * (1 - done) * target(o2).max(1).values
                loss = nn.functional.smooth_l1_loss(q(o).gather(1, a[:, None])[:, 0], y)
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(q.parameters(), MAX_GRAD_NORM)
                optimizer.step()
        curve(step)
    return curve.final(steps)
