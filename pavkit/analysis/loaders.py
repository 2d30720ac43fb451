"""Run directories read back: the records of `pavkit toy rl|sweep` and `pavkit llm rl` runs (RLRun) and of
`pavkit llm search` runs (SearchRun). Errors name the directory. The tables (pavkit.analysis.tables) and the
figures (pavkit.analysis.figures) take these objects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RLRun:
    """One didactic RL run as read from its directory."""

    path: str
    config: dict
    records: list[dict]

    @property
    def method(self) -> str:
        """STYLE key: "outcome_only" (α = 0), "effective_reward", or "initial" (an evaluation-only LLM run)."""
        if self.config.get("iters") == 0:
            return "initial"
        return "outcome_only" if self.config["alpha"] == 0 else "effective_reward"

    def final(self) -> dict:
        """The last evaluation record (an LLM run's carries "pass_at_n" and "correct_counts")."""
        ev = [r for r in self.records if "accuracy" in r]
        if not ev:
            raise ValueError(f"{self.path}: no evaluation record yet")
        return ev[-1]

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """(iterations (T,), accuracy (T,)) at the evaluation iterations."""
        ev = [r for r in self.records if "accuracy" in r]
        return np.array([r["iteration"] for r in ev]), np.array([r["accuracy"] for r in ev])

    def pass_at_n(self, iteration: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(N (k,), Pass@N (k,)) measured at ``iteration``, or None if the run has none there."""
        for r in self.records:
            if "pass_at_n" in r and r["iteration"] == iteration:
                return np.array(r["pass_at_n"]["n"]), np.array(r["pass_at_n"]["values"])
        return None



def load_rl_runs(paths: Sequence[str]) -> list[RLRun]:
    """Read run directories (config.json + train.jsonl); errors name the directory."""
    from pavkit.runs import read_json, read_records

    runs = []
    for p in paths:
        cfg = read_json(p, "config.json")
        if "prover" not in cfg or "alpha" not in cfg:
            raise ValueError(f"{p}/config.json: not a `pavkit toy rl` or `pavkit llm rl` run "
                             "(no 'prover'/'alpha' field)")
        runs.append(RLRun(str(p), cfg, read_records(p)))
    return runs



@dataclass(frozen=True)
class SearchRun:
    """One search run as read from its directory: config.json, pool.jsonl, search.jsonl."""

    path: str
    config: dict
    pool: list[dict]
    search: list[dict]

    @property
    def base(self) -> str:
        """A short name of the base policy π (its folder name)."""
        from pathlib import Path

        return Path(self.config["policy"]).name

    @property
    def prover_label(self) -> str:
        """``bok:K`` → "Bo{K}(π)"; ``model:DIR`` → the folder name of DIR."""
        from pavkit.provers import VERIFIER_PROVERS, parse_prover

        return parse_prover(self.config["prover"], VERIFIER_PROVERS).label()



def load_search_runs(paths: Sequence[str]) -> list[SearchRun]:
    """Read search run directories; errors name the directory."""
    from pavkit.runs import read_json, read_records

    runs = []
    for p in paths:
        cfg = read_json(p, "config.json")
        if "pqv" not in cfg or "orm" not in cfg:
            raise ValueError(f"{p}/config.json: not a `pavkit llm search` run (no 'pqv'/'orm' field)")
        runs.append(SearchRun(str(p), cfg, read_records(p, "pool.jsonl"), read_records(p, "search.jsonl")))
    return runs


def search_records(out_dir, methods, num_problems: int | None = None) -> tuple[list[dict], list[dict]]:
    """(pool records, search records of ``methods``) of a `pavkit llm search` run directory, on its first
    ``num_problems`` problems (default all)."""
    from pavkit import runs

    def wanted(r: dict) -> bool:
        return num_problems is None or r["problem_index"] < num_problems

    pool = [r for r in runs.read_records(out_dir, "pool.jsonl") if wanted(r)]
    search = [r for r in runs.read_records(out_dir, "search.jsonl") if wanted(r) and r["method"] in methods]
    return pool, search


def expand_run_dirs(paths: Sequence[str]) -> list[str]:
    """Run directories from paths that are run directories or folders of them (a sweep, a demo)."""
    from pathlib import Path

    from pavkit.runs import UserInputError

    found = []
    for p in paths:
        d = Path(p)
        if (d / "config.json").exists():
            found.append(str(d))
        else:
            subs = sorted(str(s) for s in d.rglob("config.json"))
            if not subs:
                raise UserInputError(f"{p}: no config.json in it or below it (not a run directory)")
            found.extend(str(Path(s).parent) for s in subs)
    return found
