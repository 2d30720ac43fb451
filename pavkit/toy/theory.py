r"""Theorem 3.1 on tree MDPs, exactly: one NPG step on the effective reward and the paper's terms.

NPG update at every internal state (paper Lemma F.2, Eq. 13, with the normaliser Z written correctly):

    π'(a|s) = π(a|s) · exp(η·(Q^π(s,a) + α·A^μ(s,a))) / Σ_b π(b|s) · exp(η·(Q^π(s,b) + α·A^μ(s,b)))

Exact improvement: V^{π'}(root) - V^π(root). Its exact first-order term in η (policy-gradient theorem,
d/dη π'(a|s) at η = 0 is π(a|s)·(r(s,a) - E_π r), and E_π[A^π] = 0):

    first_order = η · Σ_s ρ(s) · ( Var_{a~π}[A^π(s,a)] + α · E_{a~π}[A^μ(s,a)·A^π(s,a)] )

with ρ = π's state occupancy summed over depths 0..H-1. The paper's terms, with the same ρ:

    distinguishability = Σ_s ρ(s) Var_{a~π}[A^μ(s,a)],   alignment = Σ_s ρ(s) E_{a~π}[A^μ(s,a)·A^π(s,a)]

The paper prints the bound as η·(distinguishability + alignment) in the main text and as
η·(distinguishability - alignment) in App. F, Eqs. 28-29 (PAPER.md §10.3). Both readings are computed,
scaled by α (the bound is linear in α; the paper's theory uses α = 1), and checked literally against the
exact improvement; neither is picked silently.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from pavkit.estimators import complementarity, effective_reward_qa
from pavkit.toy.exact import Values, exact_values, occupancy, prover_values
from pavkit.toy.mdp import SpecError, TreeMDP, load_spec, random_tree_mdp


def npg_update(policy: np.ndarray, q_pi: np.ndarray, adv_mu: np.ndarray, lr: float, alpha: float) -> np.ndarray:
    """π' ∝ π·exp(η·(Q^π + α·A^μ)) row by row; (S, A) arrays in and out. Zero-probability actions stay 0."""
    score = lr * effective_reward_qa(q_pi, adv_mu, alpha)
    w = policy * np.exp(score - score.max(axis=1, keepdims=True))  # shift for stability; cancels in ratio
    return w / w.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class TheoryTerms:
    """Exact quantities of one NPG step of base π with prover μ (see the module docstring)."""

    distinguishability: float
    alignment: float
    improvement: float  # V^{π'}(root) - V^π(root), exact
    first_order: float  # its exact first-order term in η
    bound_plus: float  # η·α·(distinguishability + alignment): the main text's reading
    bound_minus: float  # η·α·(distinguishability - alignment): the appendix's reading
    v_root: float  # V^π(root)
    max_q: float  # max Q^π(s,a) over states π reaches and actions it takes: Remark 3.1 needs it = O(1/K)

    def as_dict(self) -> dict:
        return asdict(self)


def theorem_terms(mdp: TreeMDP, base: str, prover: str, alpha: float, lr: float,
                  base_values: Values | None = None) -> TheoryTerms:
    """All Theorem 3.1 quantities for base policy ``base`` and prover ``prover`` (a name or ``bok:K``)."""
    pi = mdp.policy(base)
    vals_pi = base_values if base_values is not None else exact_values(mdp, pi)
    vals_mu = prover_values(mdp, prover, vals_pi)
    rho = occupancy(mdp, pi)
    adv_pi, adv_mu = vals_pi.a, vals_mu.a
    terms = complementarity(pi, adv_mu, adv_pi, rho)
    var_pi = complementarity(pi, adv_pi, adv_pi, rho).distinguishability
    improved = exact_values(mdp, npg_update(pi, vals_pi.q, adv_mu, lr, alpha))
    return TheoryTerms(
        distinguishability=terms.distinguishability,
        alignment=terms.alignment,
        improvement=float(improved.v[0] - vals_pi.v[0]),
        first_order=float(lr * (var_pi + alpha * terms.alignment)),
        bound_plus=float(lr * alpha * (terms.distinguishability + terms.alignment)),
        bound_minus=float(lr * alpha * (terms.distinguishability - terms.alignment)),
        v_root=float(vals_pi.v[0]),
        max_q=float(np.max(vals_pi.q, where=(rho[:, None] > 0) & (pi > 0), initial=0.0)),
    )


@dataclass(frozen=True)
class BoundConfig:
    """Random instances for checking Theorem 3.1 and Remark 3.1 (``pavkit toy verify-bound``)."""

    instances: int = 200
    seed: int = 0
    ks: tuple[int, ...] = (1, 2, 4, 8, 16, 32)  # Best-of-K provers; K = 1 is μ = π
    num_actions: int = 3
    horizon: int = 4
    alpha: float = 1.0
    lr: float = 0.05  # η ≪ 1, as the theorem requires
    reward_density: float = 0.1
    concentration: float = 1.0
    reward_scale: float = 1.0  # leaf rewards in {0, reward_scale}: <= 1/K gives Remark 3.1's regime


def bound_records(cfg: BoundConfig) -> Iterator[dict]:
    """Yield one record per (instance, prover): instance, prover, K (None for the named prover μ), and
    every field of TheoryTerms. Provers: the instance's independent random policy ``mu``, then bok:K."""
    rng = np.random.default_rng(cfg.seed)
    provers = {"mu": None} | {f"bok:{k}": k for k in cfg.ks}  # spec → K (None for the named prover μ)
    for i in range(cfg.instances):
        mdp = random_tree_mdp(cfg.num_actions, cfg.horizon, rng, cfg.reward_density,
                              concentration=cfg.concentration, reward_scale=cfg.reward_scale)
        base_values = exact_values(mdp, mdp.policy("pi"))
        for prover, k in provers.items():
            terms = theorem_terms(mdp, "pi", prover, cfg.alpha, cfg.lr, base_values)
            yield {"instance": i, "prover": prover, "K": k, **terms.as_dict()}


def _corr(x: np.ndarray, y: np.ndarray) -> float | None:
    """Pearson correlation, or None where either side is constant (undefined)."""
    if x.size < 2 or np.std(x) == 0 or np.std(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def _group_summary(rows: Sequence[dict], tol: float) -> dict:
    imp = np.array([r["improvement"] for r in rows])
    plus = np.array([r["bound_plus"] for r in rows])
    minus = np.array([r["bound_minus"] for r in rows])
    fo = np.array([r["first_order"] for r in rows])
    held_plus, held_minus = float(np.mean(imp >= plus - tol)), float(np.mean(imp >= minus - tol))
    return {
        "pairs": len(rows),
        "improvement_nonnegative": float(np.mean(imp >= -tol)),
        "bound_plus_held": held_plus,
        "bound_minus_held": held_minus,
        "held_more_often": "plus" if held_plus > held_minus else "minus" if held_minus > held_plus else "tie",
        "correlation": {
            key: _corr(imp, np.array([r[key] for r in rows]))
            for key in ("distinguishability", "alignment", "first_order", "bound_plus", "bound_minus")
        },
        "first_order_median_rel_error": float(np.median(np.abs(imp - fo) / np.maximum(np.abs(fo), 1e-300))),
    }


def summarize_bound(records: Sequence[dict], cfg: BoundConfig, tol: float = 1e-12) -> dict:
    """Aggregate ``bound_records``: overall and per-prover hold rates and correlations, and per K the
    distinguishability and alignment ratio to K = 1 (Remark 3.1: Ω(K²) and O(K) when Q^π = O(1/K))."""
    by_prover: dict[str, list[dict]] = {}
    for r in records:
        by_prover.setdefault(r["prover"], []).append(r)
    k1 = {r["instance"]: r for r in by_prover.get("bok:1", [])}
    remark = {"K": [], "distinguishability_ratio": [], "alignment_ratio": [], "K_squared": []}
    for k in cfg.ks:
        rows = [r for r in by_prover.get(f"bok:{k}", []) if k1.get(r["instance"], {}).get("distinguishability", 0) > 0]
        if not rows:
            continue
        d = np.array([r["distinguishability"] / k1[r["instance"]]["distinguishability"] for r in rows])
        a = np.array([r["alignment"] / k1[r["instance"]]["alignment"] for r in rows])
        remark["K"].append(k)
        remark["distinguishability_ratio"].append(float(np.median(d)))
        remark["alignment_ratio"].append(float(np.median(a)))
        remark["K_squared"].append(k * k)
    all_rows = list(records)
    return {
        "config": asdict(cfg),
        **_group_summary(all_rows, tol),
        "median_v_root": float(np.median([r["v_root"] for r in by_prover.get("mu", all_rows)])),
        "median_max_q": float(np.median([r["max_q"] for r in by_prover.get("mu", all_rows)])),
        "per_prover": {name: _group_summary(rows, tol) for name, rows in by_prover.items()},
        "remark_3_1": remark,
    }


def exact_report(spec: str, base: str, prover: str, alpha: float, lr: float) -> tuple[TreeMDP, dict]:
    """`pavkit toy exact`: the tree MDP in the SPEC file, and V, Q, A of base and prover (lists in the spec's
    state order) with Theorem 3.1's terms and whether each reading of the bound held.

    Raises:
        SpecError: naming the SPEC file (and line, field) when it, or a policy name in it, is bad.
    """
    try:
        mdp = load_spec(spec)
        base_values = exact_values(mdp, mdp.policy(base))
        values = {base: base_values, prover: prover_values(mdp, prover, base_values)}
        terms = theorem_terms(mdp, base, prover, alpha, lr, base_values)
    except SpecError as e:
        if e.path is None:
            e = SpecError(e.message, e.field, path=spec, line=e.line)
        raise e from None
    return mdp, {
        "V": {name: v.v.tolist() for name, v in values.items()},
        "Q": {name: v.q.tolist() for name, v in values.items()},
        "A": {name: v.a.tolist() for name, v in values.items()},
        **terms.as_dict(),
        "bound_plus_held": terms.improvement >= terms.bound_plus,
        "bound_minus_held": terms.improvement >= terms.bound_minus,
    }
