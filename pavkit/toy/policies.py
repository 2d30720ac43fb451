r"""The didactic base policy π: a MADE-style autoregressive MLP over fixed-length token sequences (paper §3.3).

MADE (Germain et al., 2015) turns one MLP into an autoregressive model by masking its weights: input position
i (0-based) has degree i+1, every hidden unit a degree m in 1..length-1, and a connection is kept only if the
degrees allow information to flow from earlier positions to later outputs:

    input i  → hidden m   iff  m ≥ i + 1          hidden m → hidden m'   iff  m' ≥ m
    hidden m → output j   iff  j + 1 > m

so the logits of position j depend on tokens 0..j-1 only, and one forward pass on a full sequence gives every
conditional π(y_j | y_<j) (for the loss), while sampling runs ``length`` passes.

Sequences are (B, length) int64 tokens in 0..vocab_size-1; the last token is EOS. Tokens after the first EOS
are padding (EOS), not actions: ``action_mask`` excludes them from the loss.

Sampling uses a torch.Generator so runs are reproducible; ``rollout_successes`` is the fast Monte Carlo path
used for Q^π: it shares one first-layer computation per distinct prefix, updates the first layer incrementally
(only one input token changes per step) and drops rollouts whose reward is already settled.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pavkit.toy import planted as _planted
from pavkit.toy.config import SFTConfig  # noqa: F401 (re-exported)
from pavkit.toy.planted import PAD, PlantedTask


def made_masks(length: int, vocab_size: int, hidden: int, layers: int) -> list[torch.Tensor]:
    """The MADE connectivity masks (natural order), one per linear layer, each of shape (out, in).

    Hidden degrees cycle through 1..length-1 so every degree is represented about equally.
    """
    if length < 2:
        raise ValueError(f"length must be >= 2, got {length}")
    d_in = np.repeat(np.arange(1, length + 1), vocab_size)  # (length*V,)
    d_hidden = [np.sort(np.arange(hidden) % (length - 1) + 1) for _ in range(layers)]  # (hidden,) each
    masks = [d_hidden[0][:, None] >= d_in[None, :]]
    for a, b in zip(d_hidden[:-1], d_hidden[1:], strict=True):
        masks.append(b[:, None] >= a[None, :])
    masks.append(d_in[:, None] > d_hidden[-1][None, :])
    return [torch.as_tensor(m, dtype=torch.float32) for m in masks]


class MadePolicy(nn.Module):
    """π_θ(y_j | y_<j) for sequences of ``length`` tokens over ``vocab_size`` tokens (paper: 3 × 128 units)."""

    def __init__(self, length: int = 10, vocab_size: int = 15, hidden: int = 128, layers: int = 3):
        super().__init__()
        self.length, self.vocab_size = length, vocab_size
        sizes = [length * vocab_size] + [hidden] * layers + [length * vocab_size]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        for i, m in enumerate(made_masks(length, vocab_size, hidden, layers)):
            self.register_buffer(f"mask{i}", m)
        with torch.no_grad():  # start near uniform so the SFT phase, not the init, shapes π
            self.linears[-1].weight.mul_(0.1)
            self.linears[-1].bias.zero_()

    @property
    def eos(self) -> int:
        return self.vocab_size - 1

    def _weights(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(lin.weight * getattr(self, f"mask{i}"), lin.bias) for i, lin in enumerate(self.linears)]

    def logits(self, sequences: torch.Tensor) -> torch.Tensor:
        """All conditional logits in one pass: (B, length) int64 → (B, length, vocab_size)."""
        x = nn.functional.one_hot(sequences.clamp(min=0), self.vocab_size).float().flatten(1)
        x = x * (sequences >= 0).float().repeat_interleave(self.vocab_size, dim=1)  # -1 = not generated
        weights = self._weights()
        for w, b in weights[:-1]:
            x = torch.relu(nn.functional.linear(x, w, b))
        w, b = weights[-1]
        return nn.functional.linear(x, w, b).view(-1, self.length, self.vocab_size)

    def log_probs(self, sequences: torch.Tensor) -> torch.Tensor:
        """log π(y_j | y_<j) of every token: (B, length) → (B, length) (padding positions included)."""
        logp = torch.log_softmax(self.logits(sequences), dim=-1)
        return logp.gather(-1, sequences.unsqueeze(-1)).squeeze(-1)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator, temperature: float = 1.0) -> torch.Tensor:
        """n sequences from π at a temperature, EOS-padded after the first EOS: (n, length) int64."""
        return self.complete(torch.full((1, self.length), PAD, dtype=torch.long), n, generator, temperature)[0]

    @torch.no_grad()
    def complete(self, prefixes: torch.Tensor, n: int, generator: torch.Generator,
                 temperature: float = 1.0) -> torch.Tensor:
        """n continuations of each -1-padded prefix: (P, length) → (P, n, length), EOS-padded after EOS."""
        seqs = prefixes.repeat_interleave(n, dim=0).clone()
        done = torch.zeros(seqs.shape[0], dtype=torch.bool)
        for j in range(self.length):
            ended = done & (seqs[:, j] == PAD)
            todo = (seqs[:, j] == PAD) & ~done
            if todo.any():
                logits = self.logits(seqs[todo])[:, j] / temperature
                seqs[todo, j] = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator).squeeze(1)
            seqs[ended, j] = self.eos
            done |= seqs[:, j] == self.eos
        return seqs.view(prefixes.shape[0], n, self.length)


def action_mask(task: PlantedTask, sequences: np.ndarray) -> np.ndarray:
    """Which positions are real actions: up to and including the step that settles the reward.

    A step after the first EOS is padding; a step after y* has appeared has Q^π = 1 and A^μ = 0 whatever the
    action, so its policy-gradient term has mean zero and only adds variance: both are masked.

    Args:
        sequences: (B, length) int.
    Returns:
        (B, length) bool.
    """
    states = _planted._run_states(task, np.asarray(sequences))  # (B, length+1)
    return states[:, :-1] < len(task.planted)  # unsettled before the step


@torch.no_grad()
def rollout_successes(policy: MadePolicy, task: PlantedTask, prefixes: np.ndarray, n: int,
                      generator: torch.Generator) -> np.ndarray:
    """Outcomes of n rollouts of π from each -1-padded prefix, the Monte Carlo sample behind Q^π.

    Same distribution as ``task.reward(prefixes, policy.complete(prefixes, n))`` (a test checks it), but much
    faster, because it exploits the MADE structure:

    - the first layer is linear in the one-hot input, so it is computed once per prefix and then updated with
      one weight column per sampled token;
    - hidden units are sorted by degree and the logits of position j only need units of degree ≤ j, so
      position j runs on the leading slice of every hidden layer;
    - rows are sorted by prefix length, so the rows that sample position j are a leading slice too, and a row
      whose reward is settled (y* seen or EOS) is dropped.

    Args:
        prefixes: (P, length) int, -1-padded.
        n: rollouts per prefix.
    Returns:
        (P, n) float64 in {0, 1}.
    """
    pre, h = _planted._check_prefixes(task, prefixes)
    L, V, T = len(task.planted), policy.vocab_size, policy.length
    weights = policy._weights()
    w1t = weights[0][0].T.contiguous()  # (T*V, hidden): row j*V+y is the first-layer column of token y at j
    hidden_t = [(w.T.contiguous(), b) for w, b in weights[1:-1]]
    w_out, b_out = weights[-1][0].view(T, V, -1), weights[-1][1].view(T, V)
    degree = policy.mask0[:, ::V].sum(1)  # (hidden,) sorted degrees: unit m sees input positions 0..m-1
    width = [int((degree <= j).sum()) for j in range(T)]  # the units position j's logits depend on
    trans = torch.as_tensor(_planted._transitions_ext(task))
    # First layer of each distinct prefix: bias + the columns of its generated tokens.
    pre_t = torch.as_tensor(pre)
    cols = torch.arange(T) * V + pre_t.clamp(min=0)  # (P, T)
    a1 = weights[0][1] + (w1t[cols] * (pre_t >= 0).unsqueeze(-1)).sum(1)  # (P, hidden)
    # One row per rollout, sorted by prefix length; settled rows leave the arrays.
    order = torch.argsort(torch.as_tensor(h).repeat_interleave(n), stable=True)
    ids = torch.arange(pre.shape[0]).repeat_interleave(n)[order] * n + torch.arange(n).repeat(pre.shape[0])[order]
    a1 = a1.repeat_interleave(n, dim=0)[order]
    state = torch.as_tensor(_planted._prefix_states(task, pre, h)).repeat_interleave(n)[order]
    start = torch.as_tensor(h).repeat_interleave(n)[order]
    success = torch.zeros(pre.shape[0] * n, dtype=torch.bool)
    for j in range(T):
        keep = state < L
        if int(keep.sum()) < 0.8 * len(keep):  # drop settled rows (recording successes) once worth a copy
            success[ids[state == L]] = True
            a1, state, start, ids = a1[keep], state[keep], start[keep], ids[keep]
        m = int(torch.searchsorted(start, j, right=True))  # rows whose prefix ends before position j
        if m == 0:
            continue
        k = width[j]
        x = torch.relu(a1[:m, :k])
        for w, b in hidden_t:
            x = torch.addmm(b[:k], x, w[:k, :k]).relu_()
        probs = torch.softmax(torch.addmm(b_out[j], x, w_out[j, :, :k].T), -1).cumsum_(-1)
        u = torch.rand(m, 1, generator=generator)
        tok = (u > probs).sum(-1).clamp_(max=V - 1)  # inverse CDF: one uniform per row
        state[:m] = trans[state[:m], tok]  # settled states are absorbing
        a1[:m] += w1t[j * V + tok]
    success[ids[state == L]] = True
    return success.numpy().astype(np.float64).reshape(pre.shape[0], n)


def sft(policy: MadePolicy, task: PlantedTask, cfg: SFTConfig, seed: int) -> list[float]:
    """Next-token cross-entropy on samples of μ_γ (positions up to and including the first EOS).

    Returns:
        the loss of each iteration (cfg.iters,).
    """
    data = torch.as_tensor(_planted.sample_prover(task, cfg.gamma, cfg.samples, seed))  # (samples, length)
    eos_seen = torch.cumsum((data == task.eos).long(), dim=1)
    mask = ((eos_seen - (data == task.eos).long()) == 0).float()  # positions before or at the first EOS
    opt = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(cfg.iters):
        idx = torch.randint(0, data.shape[0], (cfg.batch,), generator=gen)
        loss = -(policy.log_probs(data[idx]) * mask[idx]).sum() / mask[idx].sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses
