#!/usr/bin/env python3
"""The guard against the next slow-down: this working tree against an earlier revision, on
the same machine, in one run, interleaved.

    python bench/compare.py REV [REV ...] [--rounds 2] [--only ingest|checkins]
                            [--ingest-args "--seconds 20"] [--checkin-args "--seconds 15"]
                            [--python PATH] [--cache DIR] [--keep-logs DIR] [--with PKG]
                            [--no-working-tree] [--own-bench]

Each REV (anything `git rev-parse` knows: d07b566, main~3, a tag) is built once into a scratch
virtualenv of its own, cached by commit under --cache (default ~/.cache/coalmine-compare/<sha>:
`git archive` of the commit + `pip install -e '.[embedded]'`; delete the directory to rebuild).
The working tree runs with --python (default: the checkout's .venv, else this interpreter),
which must import this checkout's packages (checked before anything runs).

Then, for --rounds rounds, every tree runs `bench/ingest.py` and then every tree runs
`bench/checkins.py` (--delay-canaries 0: throughput only), each in its own venv, from a
scratch directory outside any checkout (Python puts the current directory first on
sys.path). The order of the trees alternates from round to round (A B, B A, ...), so a drift
of the machine's speed during the run does not favour either side. The benchmark scripts are
this working tree's, so both sides get the same load generator and the same CPU accounting;
--own-bench runs each tree's own scripts instead.

It prints every run as it ends (events/s, check-ins/s, p99, CPU µs per event or check-in of
each server process, stored == accepted), then the ratios new/old of the mean events/s and
check-ins/s, with the spread of the per-round ratios (the old run of a round against the new
run of the same round) as an honest noise figure. Exit status 1 if any run failed or stored
fewer events or check-ins than were acknowledged.

Figures only mean something as ratios within one run: this machine's speed varies by day
(see docs/benchmarks.md), and other people's processes share its cores (each bench prints them).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORKING = "working tree"
ROLES = ("api", "worker", "store", "load generator")


@dataclass
class Tree:
    name: str  # the REV as given, or WORKING
    commit: str  # full sha, or "" for the working tree
    root: Path  # its source
    python: Path


@dataclass
class Run:
    tree: str
    bench: str
    round: int
    rate: float | None = None  # events/s or check-ins/s
    p99_ms: float | None = None
    cpu_us: dict[str, float] = field(default_factory=dict)  # role -> µs per event / check-in
    exact: bool = False  # stored == acknowledged
    seconds: float = 0.0
    log: Path | None = None


def git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def build(rev: str, cache: Path, extra: list[str]) -> Tree:
    """REV's source and a venv with it installed, reused when the cache has them; `extra`
    packages go into it too (a commit may import a package before it lists it)."""
    commit = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    home = cache / commit
    src, venv = home / "src", home / "venv"
    python = venv / "bin" / "python"
    if (home / "built").exists() and python.exists():
        _install_extra(python, extra)
        return Tree(rev, commit, src, python)
    print(f"building {rev} ({commit[:10]}) in {home} …", flush=True)
    shutil.rmtree(home, ignore_errors=True)
    src.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", commit], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-e", f"{src}[embedded]"],
        capture_output=True,
        text=True,
    )
    if pip.returncode != 0:
        raise SystemExit(f"pip install of {rev} failed:\n{pip.stderr[-3000:]}")
    (home / "built").write_text(commit + "\n")
    _install_extra(python, extra)
    return Tree(rev, commit, src, python)


def _install_extra(python: Path, extra: list[str]) -> None:
    if extra:
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *extra], check=True, capture_output=True
        )


def working_tree(python: str | None) -> Tree:
    chosen = Path(python) if python else REPO / ".venv" / "bin" / "python"
    if not chosen.exists():
        chosen = Path(sys.executable)
    where = subprocess.run(
        [str(chosen), "-c", "import ingest_api; print(ingest_api.__file__)"],
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
    )
    found = Path(where.stdout.strip()).resolve().parent.parent if where.returncode == 0 else None
    if found != REPO:
        raise SystemExit(
            f"{chosen} imports ingest_api from {found}, not from {REPO}: "
            f"`pip install -e '{REPO}[embedded]'` into it, or pass --python"
        )
    return Tree(WORKING, "", REPO, chosen)


_FLOAT = r"([0-9][0-9,]*\.?[0-9]*)"


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def parse(run: Run, text: str) -> None:
    """Fill `run` from a benchmark's output (the lines bench/ingest.py and checkins.py print)."""
    if run.bench == "ingest":
        m = re.search(r"accepted events: \d+ -> " + _FLOAT + " events/s", text)
        run.rate = _num(m[1]) if m else None
        m = re.search(r"latency: +p50 [0-9.]+ ms, p99 ([0-9.]+) ms", text)
        run.p99_ms = float(m[1]) if m else None
        m = re.search(r"µs per event: (.*)", text)
        run.exact = "stored == accepted: OK" in text
    else:
        m = re.search(_FLOAT + r" check-ins/s acknowledged", text)
        run.rate = _num(m[1]) if m else None
        m = re.search(r"latency p50 [0-9.]+ ms, p99 ([0-9.]+) ms", text)
        run.p99_ms = float(m[1]) if m else None
        m = re.search(r"µs per check-in\): (.*)", text)
        run.exact = "every canary exact: True" in text
    if m:  # "api 61% (140), worker 40% (95)" or "api 140, worker 95"
        for item in m[1].split(", "):
            found = re.fullmatch(r"(.+?) (?:[0-9]+% \()?([0-9.]+)\)?", item.strip())
            if found:
                role = found[1] if found[1] in ROLES else "broker"  # the broker's binary name
                run.cpu_us[role] = run.cpu_us.get(role, 0.0) + float(found[2])


def run_one(tree: Tree, bench: str, round_: int, args: argparse.Namespace, logs: Path) -> Run:
    script_root = tree.root if args.own_bench else REPO
    extra = args.ingest_args if bench == "ingest" else args.checkin_args
    argv = [str(tree.python), str(script_root / "bench" / f"{bench}.py"), *shlex.split(extra)]
    if bench == "checkins" and "--delay-canaries" not in extra:
        argv += ["--delay-canaries", "0"]
    label = tree.commit[:10] if tree.commit else "working"
    log = logs / f"r{round_}-{bench}-{label}.log"
    run = Run(tree.name, bench, round_, log=log)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="coalmine-compare-") as scratch:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env["PATH"] = f"{tree.python.parent}{os.pathsep}{env.get('PATH', '')}"
        proc = subprocess.run(
            argv, cwd=scratch, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    run.seconds = time.monotonic() - started
    log.write_text(proc.stdout)
    parse(run, proc.stdout)
    if proc.returncode != 0:
        run.exact = False
    return run


def _us(value: float) -> str:
    return f"{value:.2f}" if value < 20 else f"{value:.0f}"


def show(run: Run) -> str:
    unit = "events/s" if run.bench == "ingest" else "check-ins/s"
    rate = f"{run.rate:,.0f} {unit}" if run.rate is not None else "no figure (see log)"
    p99 = f"p99 {run.p99_ms:.0f} ms" if run.p99_ms is not None else ""
    cpu = ", ".join(f"{r} {_us(us)}" for r, us in sorted(run.cpu_us.items()))
    per = "event" if run.bench == "ingest" else "check-in"
    return (
        f"round {run.round} {run.bench:8} {run.tree:>14}: {rate:>22}  {p99:>12}  "
        f"{'stored == acked' if run.exact else 'NOT EXACT'}  "
        f"[µs/{per}: {cpu or '-'}]  ({run.seconds:.0f}s, {run.log})"
    )


def summary(runs: list[Run], trees: list[Tree]) -> None:
    new = trees[-1]
    print("\n== summary: ratios new/old (working tree over each REV) ==")
    for bench in ("ingest", "checkins"):
        mine = [r for r in runs if r.bench == bench]
        if not mine:
            continue
        unit = "events/s" if bench == "ingest" else "check-ins/s"
        means = {}
        for tree in trees:
            rates = [r.rate for r in mine if r.tree == tree.name and r.rate is not None]
            means[tree.name] = statistics.fmean(rates) if rates else None
            shown = " · ".join(f"{x:,.0f}" for x in rates)
            cpu: dict[str, list[float]] = {}
            for r in mine:
                if r.tree == tree.name:
                    for role, us in r.cpu_us.items():
                        cpu.setdefault(role, []).append(us)
            cpu_text = ", ".join(f"{k} {_us(statistics.fmean(v))}" for k, v in sorted(cpu.items()))
            mean = f"{means[tree.name]:,.0f}" if means[tree.name] else "-"
            print(f"{bench:8} {tree.name:>14}: mean {mean} {unit} ({shown}); µs: {cpu_text}")
        for old in trees[:-1]:
            if not means.get(old.name) or not means.get(new.name):
                continue
            per_round = []
            for rnd in sorted({r.round for r in mine}):
                a = [r.rate for r in mine if r.round == rnd and r.tree == old.name and r.rate]
                b = [r.rate for r in mine if r.round == rnd and r.tree == new.name and r.rate]
                if a and b:
                    per_round.append(b[0] / a[0])
            spread = f", per round {min(per_round):.2f}–{max(per_round):.2f}" if per_round else ""
            print(
                f"{bench:8} ratio {new.name} / {old.name}: "
                f"{means[new.name] / means[old.name]:.2f}x{spread}"
            )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("revs", nargs="+", metavar="REV", help="revision(s) to compare against")
    p.add_argument(
        "--rounds", type=int, default=2, help="rounds (each tree once per bench), default 2"
    )
    p.add_argument("--only", choices=("ingest", "checkins"), help="one benchmark only")
    p.add_argument("--ingest-args", default="", help="extra arguments of bench/ingest.py")
    p.add_argument("--checkin-args", default="", help="extra arguments of bench/checkins.py")
    p.add_argument(
        "--python", help="the working tree's interpreter (default: .venv of the checkout)"
    )
    p.add_argument(
        "--no-working-tree",
        action="store_true",
        help="compare the REVs among themselves (the last one is 'new')",
    )
    p.add_argument(
        "--with",
        dest="extra",
        action="append",
        default=[],
        metavar="PKG",
        help="a package to add to every REV's venv (repeatable), e.g. prometheus-client",
    )
    p.add_argument("--own-bench", action="store_true", help="run each tree's own bench scripts")
    p.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "coalmine-compare")
    p.add_argument(
        "--keep-logs", type=Path, help="directory for the runs' output (default: a temp dir)"
    )
    args = p.parse_args(argv)

    trees = [build(rev, args.cache, args.extra) for rev in args.revs]
    if not args.no_working_tree:
        trees.append(working_tree(args.python))
    if len(trees) < 2:
        p.error("nothing to compare")
    logs = args.keep_logs or Path(tempfile.mkdtemp(prefix="coalmine-compare-logs-"))
    logs.mkdir(parents=True, exist_ok=True)
    dirty = git("status", "--porcelain", "--untracked-files=no")
    print(
        f"comparing {', '.join(t.name + (f' ({t.commit[:10]})' if t.commit else '') for t in trees)}"
        f"; working tree at {git('rev-parse', '--short', 'HEAD')}{' + uncommitted changes' if dirty else ''}"
        f"; {args.rounds} round(s); logs in {logs}",
        flush=True,
    )
    benches = [args.only] if args.only else ["ingest", "checkins"]
    runs: list[Run] = []
    for rnd in range(1, args.rounds + 1):
        order = trees if rnd % 2 else trees[::-1]
        for bench in benches:
            for tree in order:
                run = run_one(tree, bench, rnd, args, logs)
                runs.append(run)
                print(show(run), flush=True)
    summary(runs, trees)
    return 0 if all(r.exact and r.rate for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
