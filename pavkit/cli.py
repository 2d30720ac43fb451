"""The ``pavkit`` command line. The only module that parses arguments, prints, and writes files.

Heavy imports (numpy, matplotlib, torch, transformers) happen inside commands so ``pavkit --help`` is fast.
"""

from __future__ import annotations

import json
import sys

import click


class InputError(click.ClickException):
    """Bad input (a malformed spec, a bad option value): one line on stderr, exit code 2, no traceback."""

    exit_code = 2


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise InputError(f"--K: expected comma-separated integers like 1,2,4, got {text!r}") from None
    if not values or min(values) < 1:
        raise InputError(f"--K: every K must be an integer >= 1, got {text!r}")
    return values


def _emit_json(obj: dict) -> None:
    click.echo(json.dumps(obj))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="pavkit")
def main() -> None:
    """pavkit: process advantage verifiers (Setlur et al., "Rewarding Progress", arXiv 2410.08146).

    A step's process reward is its progress A^μ(s,a) = Q^μ(s,a) − V^μ(s) under a prover policy μ; the
    effective reward Q^π + α·A^μ drives beam search and RL. `pavkit toy` computes every quantity exactly on
    tabular tree MDPs.
    """


@main.group()
def toy() -> None:
    """Exact toy MDPs: values, Theorem 3.1 terms, Best-of-K provers, the Fig. 2(a) example."""


@toy.command("exact")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--base", required=True, help="Name of the base policy π in the spec's `policies`.")
@click.option("--prover", required=True,
              help="The prover μ: a policy name from the spec, or bok:K for Best-of-K(π) (K >= 1).")
@click.option("--alpha", type=float, default=1.0, show_default=True,
              help="α, weight of the prover advantage in the effective reward Q^π + α·A^μ.")
@click.option("--lr", type=float, default=0.05, show_default=True,
              help="η, the NPG learning rate of the one-step update π' ∝ π·exp(η·(Q^π + α·A^μ)).")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object: V, Q, A per policy (spec state order) and the theory terms.")
def toy_exact(spec: str, base: str, prover: str, alpha: float, lr: float, as_json: bool) -> None:
    """Exact V, Q, A of base and prover on the tree MDP in SPEC (JSON), and Theorem 3.1's terms.

    SPEC is {"num_actions": A, "horizon": H, "terminal_reward": [A**H numbers in [0,1]],
    "policies": {"NAME": [[A probabilities] per internal state, breadth-first]}}.
    """
    from pavkit.toy.exact import exact_values, prover_values
    from pavkit.toy.mdp import SpecError, load_spec
    from pavkit.toy.theory import theorem_terms

    try:
        mdp = load_spec(spec)
        base_values = exact_values(mdp, mdp.policy(base))
        values = {base: base_values, prover: prover_values(mdp, prover, base_values)}
        terms = theorem_terms(mdp, base, prover, alpha, lr, base_values)
    except SpecError as e:
        if e.path is None:
            e = SpecError(e.message, e.field, path=spec, line=e.line)
        raise InputError(str(e)) from None
    out = {
        "V": {name: v.v.tolist() for name, v in values.items()},
        "Q": {name: v.q.tolist() for name, v in values.items()},
        "A": {name: v.a.tolist() for name, v in values.items()},
        **terms.as_dict(),
        "bound_plus_held": terms.improvement >= terms.bound_plus,
        "bound_minus_held": terms.improvement >= terms.bound_minus,
    }
    if as_json:
        _emit_json(out)
        return
    click.echo(f"{spec}: A = {mdp.num_actions}, H = {mdp.horizon}, {mdp.num_states} states")
    for name, v in values.items():
        click.echo(f"  V^{name}(root) = {v.v[0]:.6f}")
    for key in ("distinguishability", "alignment", "improvement", "first_order", "bound_plus", "bound_minus"):
        click.echo(f"  {key:<19} {out[key]: .6e}")
    click.echo(f"  bound held: + reading {out['bound_plus_held']}, − reading {out['bound_minus_held']}")


@toy.command("make-spec")
@click.argument("out", type=click.Path(dir_okay=False, writable=True))
@click.option("--num-actions", "-A", type=click.IntRange(2), default=3, show_default=True, help="A.")
@click.option("--horizon", "-H", type=click.IntRange(1), default=3, show_default=True, help="H.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--reward-density", type=click.FloatRange(0, 1), default=0.3, show_default=True,
              help="Fraction of leaves with reward 1 (the rest 0).")
@click.option("--concentration", type=click.FloatRange(0, min_open=True), default=1.0, show_default=True,
              help="Dirichlet concentration of policy rows: small = low entropy, large = near uniform.")
@click.option("--policies", default="pi,mu", show_default=True, help="Comma-separated policy names.")
def toy_make_spec(out: str, num_actions: int, horizon: int, seed: int, reward_density: float,
                  concentration: float, policies: str) -> None:
    """Write a random tree-MDP SPEC (JSON) to OUT, to try `pavkit toy exact` on."""
    from pavkit.toy.mdp import MAX_LEAVES, random_tree_mdp, save_spec

    if num_actions**horizon > MAX_LEAVES:
        raise InputError(f"--horizon: A**H = {num_actions}**{horizon} leaves exceeds {MAX_LEAVES}")
    names = tuple(n.strip() for n in policies.split(",") if n.strip())
    if not names:
        raise InputError("--policies: give at least one name")
    mdp = random_tree_mdp(num_actions, horizon, seed, reward_density, concentration=concentration,
                          policy_names=names)
    save_spec(mdp, out)
    click.echo(f"wrote {out}: A = {num_actions}, H = {horizon}, policies {', '.join(names)}", err=True)


@toy.command("verify-bound")
@click.option("--instances", type=click.IntRange(1), default=200, show_default=True,
              help="Number of random tree MDPs.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the instance generator.")
@click.option("--K", "ks", default="1,2,4,8,16,32", show_default=True,
              help="Comma-separated K of the Best-of-K(π) provers (K = 1 is μ = π).")
@click.option("--num-actions", "-A", type=click.IntRange(2), default=3, show_default=True, help="A per state.")
@click.option("--horizon", "-H", type=click.IntRange(1), default=4, show_default=True, help="Tree depth H.")
@click.option("--alpha", type=float, default=1.0, show_default=True, help="α of the effective reward.")
@click.option("--lr", type=float, default=0.05, show_default=True, help="η of the NPG step (η ≪ 1).")
@click.option("--reward-density", type=click.FloatRange(0, 1), default=0.1, show_default=True,
              help="Fraction of leaves with a nonzero reward (the rest 0).")
@click.option("--concentration", type=click.FloatRange(0, min_open=True), default=1.0, show_default=True,
              help="Dirichlet concentration of π and μ rows (policy entropy).")
@click.option("--reward-scale", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True,
              help="Leaf rewards are {0, scale}, read as success probabilities; scale <= 1/max(K) makes "
                   "every Q^π = O(1/K), the regime of Remark 3.1.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with every figure.")
@click.option("--plot", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write a PNG: bound readings vs exact improvement, and the Best-of-K ratios vs K.")
def toy_verify_bound(instances: int, seed: int, ks: str, num_actions: int, horizon: int, alpha: float,
                     lr: float, reward_density: float, concentration: float, reward_scale: float,
                     as_json: bool, plot: str | None) -> None:
    """Check Theorem 3.1 and Remark 3.1 on random tree MDPs, with exact values.

    For every instance, a random base π, an independent random prover `mu`, and Best-of-K(π) provers:
    one exact NPG step on Q^π + α·A^μ, its exact improvement, the distinguishability and alignment terms,
    and both printed readings of the bound (+ in the main text, − in the appendix).
    """
    from pavkit.toy.theory import BoundConfig, bound_records, summarize_bound

    cfg = BoundConfig(instances, seed, _int_list(ks), num_actions, horizon, alpha, lr, reward_density,
                      concentration, reward_scale)
    if num_actions**horizon > 1 << 20:
        raise InputError(f"--horizon: A**H = {num_actions}**{horizon} is too large for a sweep (max 2**20)")
    per_instance = len(cfg.ks) + 1
    records = []
    with click.progressbar(length=instances * per_instance, label="instances × provers", file=sys.stderr) as bar:
        for record in bound_records(cfg):
            records.append(record)
            bar.update(1)
    summary = summarize_bound(records, cfg)
    if plot:
        from pavkit.analysis.figures import verify_bound_figure

        verify_bound_figure(records, summary).savefig(plot, dpi=120)
        click.echo(f"wrote {plot}", err=True)
    if as_json:
        _emit_json(summary)
    else:
        click.echo(_bound_table(summary))


def _fmt(x: float | None) -> str:
    return "   n/a" if x is None else f"{x:+.3f}"


def _bound_table(summary: dict) -> str:
    c = summary["config"]
    ratio = dict(zip(summary["remark_3_1"]["K"], summary["remark_3_1"]["distinguishability_ratio"],
                     strict=True))
    lines = [
        f"Theorem 3.1 on {c['instances']} random tree MDPs (A = {c['num_actions']}, H = {c['horizon']}, "
        f"α = {c['alpha']}, η = {c['lr']}, reward density {c['reward_density']}, scale {c['reward_scale']}; "
        f"median V^π(root) = {summary['median_v_root']:.3f}, median max Q^π = {summary['median_max_q']:.3f})",
        "",
        f"{'prover':<8} {'imp>=0':>7} {'+ held':>7} {'- held':>7} {'r(imp,dist)':>12} {'r(imp,align)':>13} "
        f"{'dist/dist(K=1)':>15}",
    ]
    for name, g in summary["per_prover"].items():
        k = int(name[4:]) if name.startswith("bok:") else None
        r = f"{ratio[k]:.2f}" if k in ratio else "-"
        lines.append(
            f"{name:<8} {g['improvement_nonnegative']:>7.1%} {g['bound_plus_held']:>7.1%} "
            f"{g['bound_minus_held']:>7.1%} {_fmt(g['correlation']['distinguishability']):>12} "
            f"{_fmt(g['correlation']['alignment']):>13} {r:>15}"
        )
    lines += [
        "",
        f"all pairs: improvement >= 0 in {summary['improvement_nonnegative']:.1%}; "
        f"+ reading held in {summary['bound_plus_held']:.1%}, − reading in {summary['bound_minus_held']:.1%} "
        f"(held more often: {summary['held_more_often']}); exact first-order term within "
        f"{summary['first_order_median_rel_error']:.1%} (median) of the improvement",
    ]
    return "\n".join(lines)


@toy.command("table")
@click.option("--alpha", type=float, default=0.5, show_default=True,
              help="α of the effective reward Q^π + α·A^μ (the paper's search value; μ = π here).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: rows and kept beams.")
def toy_table(alpha: float, as_json: bool) -> None:
    """The paper's Fig. 2(a): Q, V, A of six proposals and the beams kept by Q^π vs the effective reward."""
    from pavkit.toy.fig2 import fig2a_rows, fig2a_search

    rows = fig2a_rows()
    q_only, effective = fig2a_search(0.0), fig2a_search(alpha)
    if as_json:
        _emit_json({"rows": rows, "alpha": alpha, "kept_q_only": q_only.beams,
                    "kept_effective_reward": effective.beams})
        return
    click.echo("Fig. 2(a): beam width 2, 3 proposals per state\n")
    click.echo(f"{'state':<6} {'V^π(s)':>7}  {'action':<7} {'Q^π(s,a)':>9} {'A^π(s,a)':>9} "
               f"{'Q+αA':>7}")
    for r in rows:
        click.echo(f"{r['state']:<6} {r['V']:>7.2f}  {r['action']:<7} {r['Q']:>9.2f} {r['A']:>+9.2f} "
                   f"{r['Q'] + alpha * r['A']:>7.3f}")
    click.echo(f"\nkept by Q^π only:                {', '.join(q_only.beams)}")
    click.echo(f"kept by Q^π + {alpha}·A^μ (μ = π):  {', '.join(effective.beams)}")


if __name__ == "__main__":
    main()
