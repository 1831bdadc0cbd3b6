"""Every benchmark on a throwaway compose stack: `make bench` (or `make bench-quick`).

    uv run --frozen python benchmarks/run.py [--quick] [--only NAME ...] [--repeat N]

Each figure is the median (min, max) of its repetitions next to its floor measured in the same
run, with the ratio and target. Prints a markdown table; writes benchmarks/results/<date>.json
and <date>.md (with --only, <date>-<name>.*). Benchmarks report, they never fail: a missed target
is a "no" in the table, and a benchmark that crashes is reported as an error row while the others
still run."""

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
import warnings
from pathlib import Path

# Dagster's beta/preview notices about the code locations' own definitions, once per import.
warnings.filterwarnings("ignore", message=r".*(currently in beta|currently in preview).*")

import backfill_year  # noqa: E402
import burst  # noqa: E402
import cold_start  # noqa: E402
import footprint  # noqa: E402
import graphql_latency  # noqa: E402
import monitoring_scrape  # noqa: E402
import run_launch  # noqa: E402
import warehouse_load  # noqa: E402
import warm_restart  # noqa: E402
from bench_stack import BenchStack, utc_now  # noqa: E402
from figures import markdown  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
# Order matters: cold start brings the stack up (with empty volumes); the backfill, which fills
# the warehouse and stops sensors, goes last.
BENCHMARKS = {m.NAME: m for m in (warehouse_load, cold_start, warm_restart,
                                   footprint, graphql_latency, run_launch, burst, backfill_year,
                                   monitoring_scrape)}
NEEDS_STACK = set(BENCHMARKS) - {warehouse_load.NAME, monitoring_scrape.NAME}


@dataclass
class Context:
    quick: bool
    repeat: int | None
    stack: BenchStack | None = None
    stack_is_up: bool = False
    stack_failed: bool = False
    single_run_success_s: list[float] = field(default_factory=list)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, two-week backfill (development)")
    parser.add_argument("--only", action="append", choices=sorted(BENCHMARKS), metavar="NAME",
                        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}")
    parser.add_argument("--repeat", type=int, help="repetitions per figure (default: per benchmark)")
    args = parser.parse_args()
    selected = [name for name in BENCHMARKS if not args.only or name in args.only]
    ctx = Context(quick=args.quick, repeat=args.repeat)
    started, begin = utc_now(), time.monotonic()
    rows, errors, durations = [], {}, {}
    with tempfile.TemporaryDirectory(prefix="flights-bench-") as workdir:
        try:
            if NEEDS_STACK & set(selected):
                ctx.stack = BenchStack(Path(workdir))
                print(f"building images, stack {ctx.stack.project} ...", flush=True)
                ctx.stack.build()
            for name in selected:
                print(f"== {name}", flush=True)
                t = time.monotonic()
                try:
                    if name in NEEDS_STACK and name != cold_start.NAME and not ctx.stack_is_up:
                        if ctx.stack_failed:
                            raise RuntimeError("skipped: the stack did not come up for an earlier benchmark")
                        ctx.stack_failed = True
                        ctx.stack.compose("up", "-d", "--wait", "--wait-timeout", "300")
                        ctx.stack.wait_loaded()
                        ctx.stack_is_up, ctx.stack_failed = True, False
                    figures = BENCHMARKS[name].run(ctx)
                    rows += [f.as_dict() for f in figures]
                    print(markdown([f.as_dict() for f in figures]), flush=True)
                except Exception as exc:  # report and go on: one broken benchmark must not hide the others
                    errors[name] = "".join(traceback.format_exception(exc))
                    print(f"{name} failed:\n{errors[name]}", file=sys.stderr, flush=True)
                    if ctx.stack is not None and name in NEEDS_STACK:
                        errors[name] += "\n--- compose logs (tail) ---\n" + ctx.stack.logs(40)
                durations[name] = round(time.monotonic() - t, 1)
        finally:
            if ctx.stack is not None:
                ctx.stack.down()
    result = {
        "started": started, "finished": utc_now(), "quick": args.quick, "repeat": args.repeat,
        "duration_s": round(time.monotonic() - begin, 1), "benchmark_durations_s": durations,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "docker": subprocess.run(["docker", "version", "-f", "{{.Server.Version}}"],
                                             capture_output=True, text=True).stdout.strip()},
        "git": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=RESULTS.parent).stdout.strip(),
        "figures": rows, "errors": errors,
    }
    RESULTS.mkdir(exist_ok=True)
    # A partial run (--only) is named after what it ran, so it never overwrites the day's full one.
    stem = (dt.datetime.now(dt.UTC).strftime("%Y-%m-%d") + ("-quick" if args.quick else "")
            + "".join(f"-{name.replace('_', '-')}" for name in (selected if args.only else [])))
    table = markdown(rows)
    if errors:
        table += "\nerrors: " + ", ".join(errors) + " (tracebacks in the JSON)\n"
    header = (f"# Benchmarks {started}{' (--quick)' if args.quick else ''}\n\n{os.cpu_count()} CPUs, "
              f"{result['duration_s']} s in all; medians of repetitions, floors measured in the same run.\n\n")
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(header + table)
    print("\n" + header + table)
    print(f"wrote {RESULTS / stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
