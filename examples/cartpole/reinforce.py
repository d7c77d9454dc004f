"""REINFORCE (Williams 1992): the Monte Carlo policy gradient.

After each episode, every action's log-probability is pushed up in proportion to the
discounted return that followed it. The returns are standardised within the episode (a
baseline in Williams's sense that also scales the step), as in PyTorch's
examples/reinforcement_learning/reinforce.py, whose settings are the defaults here: one
hidden layer of 128 ReLU units, Adam at 1e-2, gamma 0.99, one episode per update. That
example also puts dropout (p=0.6) after the hidden layer; it is left out here, so that
the policy that is evaluated is the one that was trained.
"""

import numpy as np
import torch
from cartpole import Curve, mlp, sample, start

import pursuit
from pursuit import Float, Int

GAMMA = 0.99  # discount of the returns each log-probability is weighted by


def discounted_returns(rewards, gamma=GAMMA):
    """G_t = r_t + gamma * G_{t+1}, for every step of one episode."""
    returns = np.zeros(len(rewards), dtype=np.float32)
    following = 0.0
    for t in reversed(range(len(rewards))):
        following = rewards[t] + gamma * following
        returns[t] = following
    return returns


@pursuit.method(source="Williams 1992; settings of PyTorch's examples/reinforce.py",
                baseline=True)
def reinforce(trial, *,
              lr=Float(1e-4, 1e-1, log=True, default=1e-2),  # Adam's step size
              width=Int(16, 512, log=True, default=128, scale="params"),  # hidden units
              steps=Int(5_000, 400_000, log=True, default=100_000, scale="steps")):
    """Train a softmax policy by REINFORCE for ``steps`` environment steps."""
    [env], rng = start(trial)
    policy = mlp([4, width, 2])
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
    curve = Curve(trial, policy)
    curve(0)
    taken = 0
    obs, _ = env.reset()
    while taken < steps:
        observations, actions, rewards, done = [], [], [], False
        while not done and taken < steps:  # one episode (cut short at the step budget)
            action = int(sample(policy, obs[None], rng)[0])
            observations.append(obs)
            actions.append(action)
            obs, reward, terminated, truncated, _ = env.step(action)
            rewards.append(reward)
            taken += 1
            done = terminated or truncated
            if taken < steps:  # every EVAL_EVERY steps; the last point follows the last update
                curve(taken)
        if done:
            obs, _ = env.reset()
        # The episode's log-probabilities, recomputed in one batch with gradients.
        logits = policy(torch.as_tensor(np.array(observations)))
        log_probs = torch.log_softmax(logits, -1)[torch.arange(len(actions)), actions]
        returns = torch.as_tensor(discounted_returns(rewards))
        if len(returns) > 1:
            returns = (returns - returns.mean()) / (returns.std() + 1e-8)
        loss = -(log_probs * returns).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return curve.final(taken)
