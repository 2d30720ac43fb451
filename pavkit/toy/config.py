"""The didactic RL run's configuration (paper §3.3): what `pavkit toy rl` / `toy sweep` record in config.json.

Torch-free, so the CLI generates its options from these fields (``pavkit.options.option``) and `pavkit --help`
stays fast; ``pavkit.toy.rl`` trains from it and re-exports it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from pavkit.options import option
from pavkit.provers import PLANTED_PROVERS, parse_prover
from pavkit.toy import planted as _planted
from pavkit.toy.planted import PlantedTask


@dataclass(frozen=True)
class SFTConfig:
    """Initialisation of π by SFT on samples of the weak prover μ_γ (paper: γ = 5, 3,200 samples, 50 × 64)."""

    gamma: float = 5.0
    samples: int = 3200
    iters: int = 50
    batch: int = 64
    lr: float = 1e-3



OPTIMIZERS = ("adam", "sgd")
# RLConfig fields added after runs were first written, with the value every older run had: a run directory
# whose config.json lacks one resumes as if it held that value (runs.config_difference).
ADDED_FIELDS = {"mu_reading": "per-token", "optimizer": "adam"}


@dataclass(frozen=True)
class RLConfig:
    """Everything that defines a didactic RL run (paper values as defaults where the paper gives them).

    Attributes:
        prover: "gamma:G" (the procedural prover μ_γ, exact A^μ) or "bok:K" (Best-of-K(π) from MC Q^π).
        alpha: α of the effective reward Q^π + α·A^μ; 0 is outcome-only RL (paper: 1).
        iters: RL iterations (paper: 10,000; accuracy saturates after ≈350 with γ = 10).
        batch: sequences per iteration (paper: 64).
        lr: learning rate of ``optimizer``, constant (paper: Adam 1e-3).
        optimizer: "adam" (the paper's) or "sgd" (plain gradient steps, no momentum). Adam divides each
            parameter's step by the running RMS of its gradient, so a weak prover's tiny advantages still move
            the policy at full speed; plain SGD steps in proportion to the weights' size (issue #14's test).
        n_mc: Monte Carlo rollouts of the current π per prefix for Q^π (paper: "more than 100"). 0 uses the
            sampled sequence's own outcome r(y) as Q^π at every step (the textbook REINFORCE return, one
            sample; PAPER.md §10.4 leaves open which of the two the paper's RL used); "bok:K" needs n_mc >= 1.
        prover_mc: 0 takes V^μ of μ_γ exact from its DP; n > 0 estimates it from n rollouts of μ_γ per distinct
            prefix, like the paper's "almost oracle" Monte Carlo values (then weak and strong provers give
            A^μ = 0 exactly wherever all n rollouts fail or all succeed).
        eval_every: iterations between accuracy evaluations (0: only at the start and the end).
        eval_samples: fresh samples per evaluation.
        final_samples: fresh samples for the final accuracy (>= 2,000).
        pass_at_iter: iteration after which Pass@N is measured (paper Fig. 3(c): 100); also at iteration 0.
        pass_at_ns: the N of Pass@N.
        pass_samples: samples behind each Pass@N curve (>= max N; unbiased estimator).
        planted: y* (paper example: 3 6 0 3 5).
        mu_reading: "per-token" or "pooled", the reading of μ_γ (``pavkit.toy.planted.prover_probs``); it also
            decides the SFT data, which are samples of μ_{sft.gamma}.
        vocab_size, length: 15 tokens (14 = EOS), sequences of 10.
        hidden, layers: the MADE MLP (paper: 3 × 128).
        sft: the SFT initialisation on μ_5 samples.
        seed: seeds SFT data, initialisation, sampling and rollouts.
    """

    prover: str = "gamma:10"
    alpha: float = 1.0
    iters: int = option(400, "RL iterations (paper: 10,000; γ = 10 saturates after ≈350).", min=1)
    batch: int = option(64, "Sequences sampled per iteration (paper: 64).", min=1)
    lr: float = option(1e-3, "Learning rate of --optimizer, constant (paper: Adam 1e-3).", min=0, min_open=True)
    optimizer: str = option(
        "adam",
        "adam (the paper's) or sgd (plain gradient steps: a step's size follows the weights' size, where Adam "
        "normalises it; plain SGD needs a much larger --lr, e.g. 1).",
        choices=OPTIMIZERS)
    n_mc: int = option(
        100,
        "Monte Carlo rollouts of π per prefix for Q^π (paper: > 100); 0 uses the sampled sequence's own reward r(y) "
        "as Q^π (textbook REINFORCE return; not with bok:K).",
        min=0)
    prover_mc: int = option(
        0,
        "0: V^μ of μ_γ exact (DP); n > 0: the mean of n rollouts of μ_γ per prefix, like the paper's Monte Carlo "
        "values (A^μ is then exactly 0 where all rollouts agree).",
        min=0)
    eval_every: int = option(25, "Iterations between accuracy evaluations (0: only first and last).", min=0)
    eval_samples: int = option(1000, "Fresh temperature-1 samples per evaluation.", min=1)
    final_samples: int = option(4000, "Fresh samples behind the final accuracy (>= 2,000).", min=2000)
    pass_at_iter: int = option(
        100, "Iteration after which Pass@N is measured (paper Fig. 3(c): 100); also at 0.", min=0)
    pass_at_ns: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
    pass_samples: int = 4096
    planted: tuple[int, ...] = (3, 6, 0, 3, 5)
    mu_reading: str = option(
        _planted.DEFAULT_MU_READING,
        "Reading of the paper's μ_γ (\"mass proportional to γ on y*_{k+1}, uniform on all other tokens\"): pooled = "
        "weight γ against 1 shared by all the others (μ_10 succeeds 88 % of the time, μ_100 99.5 %, as in Fig. 9); "
        "per-token = weight γ on the next y* token and 1 on EACH of the other 14 (μ_10 succeeds 4.6 %). Also decides "
        "the SFT data (samples of μ_{--sft-gamma}). README, Design: why pooled.",
        choices=_planted.MU_READINGS)
    vocab_size: int = 15
    length: int = option(10, "Sequence length H (paper: 10); y* must fit.", min=1)
    hidden: int = 128
    layers: int = 3
    sft: SFTConfig = field(default_factory=SFTConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        parse_prover(self.prover, PLANTED_PROVERS)
        self.task()  # validates y* and the reading
        for name in ("iters", "batch", "eval_samples", "final_samples", "pass_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.prover_mc < 0:
            raise ValueError(f"prover_mc must be >= 0, got {self.prover_mc}")
        if self.n_mc < 0 or (self.n_mc == 0 and parse_prover(self.prover, PLANTED_PROVERS).kind == "bok"):
            raise ValueError(f"n_mc must be >= 0, and >= 1 for a Best-of-K prover (got {self.n_mc})")
        if self.pass_samples < max(self.pass_at_ns):
            raise ValueError(f"pass_samples ({self.pass_samples}) must be >= the largest N ({max(self.pass_at_ns)})")

    def task(self) -> PlantedTask:
        """The planted task (and its μ_γ reading) this run trains on."""
        return PlantedTask(self.planted, vocab_size=self.vocab_size, length=self.length, mu_reading=self.mu_reading)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RLConfig:
        """Inverse of ``to_dict``; a dict written before a field existed gets its old value (ADDED_FIELDS)."""
        d = {**ADDED_FIELDS, **d}
        d["sft"] = SFTConfig(**d.get("sft", {}))
        for key in ("planted", "pass_at_ns"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)
