"""PPO (Schulman et al. 2017): clipped policy-gradient steps on short rollouts.

Eight environments run side by side for 32 steps; advantages come from generalised
advantage estimation (GAE) on a learned value; then the policy and value networks take
20 epochs of Adam steps on the clipped surrogate objective, with the learning rate and
the clip range falling linearly to 0 over training. The settings are RL Baselines3
Zoo's for CartPole-v1 (hyperparams/ppo.yml), on Stable Baselines3's defaults for the
rest: separate policy and value networks of two tanh layers of 64 with orthogonal
initialisation, advantages normalised per batch, value loss weight 0.5, gradient norm
clipped to 0.5, no entropy bonus.
"""

import numpy as np
import torch
from cartpole import Curve, mlp, sample, start
from torch import nn

import pursuit
from pursuit import Float, Int

ENVS = 8  # environments run side by side
ROLLOUT = 32  # steps per environment between updates (256 transitions per update)
EPOCHS = 20  # passes over each rollout (one minibatch of all 256 transitions)
GAMMA = 0.98  # discount
LAMBDA = 0.8  # GAE's lambda
CLIP = 0.2  # clip range of the probability ratio, falling linearly to 0
VALUE_WEIGHT = 0.5  # weight of the value loss
MAX_GRAD_NORM = 0.5  # gradient clipping


def network(width, outputs, last_gain):
    """Two tanh layers of ``width``, orthogonally initialised as Stable Baselines3 does."""
    net = mlp([4, width, width, outputs], activation=nn.Tanh)
    linears = [m for m in net if isinstance(m, nn.Linear)]
    for layer, gain in zip(linears, [2**0.5, 2**0.5, last_gain], strict=True):
        nn.init.orthogonal_(layer.weight, gain)
        nn.init.zeros_(layer.bias)
    return net


def advantages(rewards, values, last_values, terminal):
    """GAE over a rollout of shape (ROLLOUT, ENVS); ``terminal`` marks the last step of
    an episode (its next state's value does not count)."""
    adv = np.zeros_like(rewards)
    running = np.zeros(ENVS, np.float32)
    for t in reversed(range(ROLLOUT)):
        following = last_values if t == ROLLOUT - 1 else values[t + 1]
        delta = rewards[t] + GAMMA * following * (1 - terminal[t]) - values[t]
        running = delta + GAMMA * LAMBDA * (1 - terminal[t]) * running
        adv[t] = running
    return adv


@pursuit.method(source="Schulman et al. 2017; CartPole settings of RL Baselines3 Zoo",
                baseline=True)
def ppo(trial, *,
        lr=Float(1e-5, 1e-2, log=True, default=1e-3),  # Adam's initial step size
        width=Int(16, 256, log=True, default=64, scale="params"),  # units per hidden layer
        steps=Int(5_000, 400_000, log=True, default=100_000, scale="steps")):
    """Train a softmax policy by PPO for ``steps`` environment steps (in all environments)."""
    envs, rng = start(trial, ENVS)
    policy, value = network(width, 2, 0.01), network(width, 1, 1.0)
    params = [*policy.parameters(), *value.parameters()]
    optimizer = torch.optim.Adam(params, lr=lr, eps=1e-5, foreach=True)
    curve = Curve(trial, policy)
    curve(0)
    obs = np.array([env.reset()[0] for env in envs])
    updates = max(1, steps // (ENVS * ROLLOUT))
    for update in range(updates):
        left = 1 - update / updates  # the schedules' share of their initial values
        for group in optimizer.param_groups:
            group["lr"] = lr * left
        batch_obs = np.zeros((ROLLOUT, ENVS, 4), np.float32)
        actions = np.zeros((ROLLOUT, ENVS), np.int64)
        rewards, terminal = np.zeros((2, ROLLOUT, ENVS), np.float32)
        for t in range(ROLLOUT):
            batch_obs[t] = obs
            actions[t] = sample(policy, obs, rng)
            for i, env in enumerate(envs):
                obs[i], rewards[t, i], terminated, truncated, _ = env.step(int(actions[t, i]))
                if truncated and not terminated:  # cut at 500 steps: bootstrap its value
                    with torch.no_grad():
                        rewards[t, i] += GAMMA * value(torch.as_tensor(obs[i])).item()
                if terminated or truncated:
                    terminal[t, i] = 1
                    obs[i] = env.reset()[0]
        with torch.no_grad():
            values = value(torch.as_tensor(batch_obs)).squeeze(-1).numpy()
            last_values = value(torch.as_tensor(obs)).squeeze(-1).numpy()
        adv = advantages(rewards, values, last_values, terminal)
        o, a = torch.as_tensor(batch_obs).reshape(-1, 4), torch.as_tensor(actions).reshape(-1)
        adv_t = torch.as_tensor(adv).reshape(-1)
        returns = adv_t + torch.as_tensor(values).reshape(-1)
        norm_adv = (adv_t - adv_t.mean()) / (adv_t.std() + 1e-8)
        clip = CLIP * left
        with torch.no_grad():
            old_log_probs = torch.log_softmax(policy(o), -1)[torch.arange(len(a)), a]
        for _ in range(EPOCHS):  # one minibatch: the whole rollout
            log_probs = torch.log_softmax(policy(o), -1)[torch.arange(len(a)), a]
            ratio = torch.exp(log_probs - old_log_probs)
            policy_loss = -torch.min(ratio * norm_adv,
                                     ratio.clamp(1 - clip, 1 + clip) * norm_adv).mean()
            value_loss = (value(o).squeeze(-1) - returns).pow(2).mean()
            loss = policy_loss + VALUE_WEIGHT * value_loss
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
            optimizer.step()
        curve((update + 1) * ENVS * ROLLOUT)
    return curve.final(updates * ENVS * ROLLOUT)
