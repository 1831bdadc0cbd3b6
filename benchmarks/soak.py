"""Soak: the default stack with the live demo on (a landed day every REPLAY_SECONDS_PER_DAY) and
the watchdog on, for --minutes (60 by default), sampled every --interval seconds. Reports:

- runs created during the soak by status: failed (FAILURE, CANCELED) must be zero, apart from runs
  that a blocking asset check refused (bad input is refused by design: the real data has one such
  day, 2013-02-12's weather), which are listed with the checks that failed;
- each service's memory slope (least squares, MiB per hour) after a warm-up: flat means it would
  grow by less than FLAT_SHARE of its mean (at least FLAT_FLOOR_MIB), and less than FLAT_MIB, in an
  hour. Judged on anonymous
  memory (the cgroup's private, non-reclaimable pages: what a leak grows); `docker stats` also
  counts the page cache and Postgres' shared_buffers, which fill up to their bound as the
  warehouse and the event log grow, and is reported beside it;
- Postgres client connections by role, against the role limits and the README's budget;
- exited run containers, which the watchdog prunes after RUN_CONTAINER_KEEP_MINUTES: bounded
  means the count in the soak's second half stays within EXITED_TOLERANCE of the most seen by its
  middle (after the keep time, pruning must keep pace with the demo);
- the whole stack's CPU (services + run containers) in cores: the mean, and the highest mean
  over any 10 minutes (the live-demo target of the performance issue: <= 0.5 of one core). From
  cgroup CPU counters between samples: each service's own, and Docker's parent cgroup for all
  containers, whose difference is the run containers' (most live a few seconds, between two
  samples, where `docker stats` would miss them; other containers on the host count too, so soak
  an otherwise idle host). `docker stats` where cgroups are not readable;
- a user's trivial run (platform/canary) launch -> SUCCESS with the demo on, --user-runs times
  at the end (target: p50 <= 3 s).

    uv run --frozen python benchmarks/soak.py [--minutes 60] [--keep-minutes 15]

Writes benchmarks/results/<date>-soak.json and .md (<date>-soak-<N>min.* for another length). Like every benchmark it reports and never
fails; the verdicts are in the table."""

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2

from bench_stack import BenchStack, all_containers_cpu_seconds, utc_now
from run_launch import launch_and_time

RESULTS = Path(__file__).resolve().parent / "results"
FLAT_SHARE = 0.10
FLAT_MIB = 50.0
# Below this an hour's growth is within docker stats' noise for a small process (a 14 MiB proxy).
FLAT_FLOOR_MIB = 5.0
WARM_UP_MINUTES = 5
# README "Postgres connection budget": the peak with defaults, and the per-role caps.
CONNECTION_BUDGET = 95
ROLE_LIMITS = {"dagster": 120, "warehouse": 60}
FAILED = ("FAILURE", "CANCELED")
# The steady count of exited run containers moves with the demo's pace (a run more or less a minute).
EXITED_TOLERANCE = 1.1


def slope_per_hour(times_s: list[float], values: list[float]) -> float:
    """Least-squares slope of values over time, per hour."""
    if len(times_s) < 2:
        return 0.0
    mean_t, mean_v = statistics.fmean(times_s), statistics.fmean(values)
    spread = sum((t - mean_t) ** 2 for t in times_s)
    if spread == 0:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in zip(times_s, values)) / spread * 3600


def memory_verdicts(samples: list[dict], warm_up_s: float, key: str = "memory_mib") -> dict[str, dict]:
    """Per service: mean, first and last MiB after the warm-up, slope MiB/h, and whether flat."""
    series: dict[str, tuple[list[float], list[float]]] = {}
    for sample in samples:
        if sample["t"] < warm_up_s:
            continue
        for service, mib in sample.get(key, {}).items():
            times, values = series.setdefault(service, ([], []))
            times.append(sample["t"])
            values.append(mib)
    verdicts = {}
    for service, (times, values) in sorted(series.items()):
        mean = statistics.fmean(values)
        slope = slope_per_hour(times, values)
        verdicts[service] = {"mean_mib": round(mean, 1), "first_mib": round(values[0], 1),
                             "last_mib": round(values[-1], 1), "slope_mib_per_h": round(slope, 1),
                             "flat": slope < min(FLAT_MIB, max(FLAT_SHARE * mean, FLAT_FLOOR_MIB))}
    return verdicts


def exited_verdict(samples: list[dict]) -> dict:
    """Bounded: the second half never holds more exited run containers than the first half's most."""
    half = len(samples) // 2
    first = max((s["exited_run_containers"] for s in samples[:half]), default=0)
    second = max((s["exited_run_containers"] for s in samples[half:]), default=0)
    return {"max_first_half": first, "max_second_half": second, "last": samples[-1]["exited_run_containers"] if samples else 0,
            "bounded": second <= max(first * EXITED_TOLERANCE, 1)}


def connection_verdict(samples: list[dict]) -> dict:
    by_role: dict[str, int] = {}
    for sample in samples:
        for role, count in sample["connections"].items():
            by_role[role] = max(by_role.get(role, 0), count)
    total = max((sum(s["connections"].values()) for s in samples), default=0)
    within = total <= CONNECTION_BUDGET and all(by_role.get(r, 0) < limit for r, limit in ROLE_LIMITS.items())
    return {"max_total": total, "budget": CONNECTION_BUDGET, "max_by_role": by_role,
            "role_limits": ROLE_LIMITS, "within_budget": within}


def rolling_max_mean(samples: list[dict], window_s: float) -> float:
    """The highest mean total CPU over any window of window_s (or the whole run if shorter)."""
    totals = [(s["t"], sum(s["cpu_cores"].values())) for s in samples]
    best = 0.0
    for i, (start, _) in enumerate(totals):
        window = [v for t, v in totals[i:] if t - start <= window_s]
        if totals[-1][0] - start < window_s and i:
            break
        best = max(best, statistics.fmean(window))
    return best


def stats(stack: BenchStack) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Memory (MiB, docker stats), CPU (cores) and anonymous memory (MiB) by service, the run
    containers summed as one."""
    memory, cpu, anon = {}, {}, {}

    def service_of(name: str) -> str:
        service = stack.service_name(name)
        return "run containers" if service.startswith("run:") else service

    for name, (mib, cores) in stack.usage().items():
        service = service_of(name)
        memory[service] = memory.get(service, 0.0) + mib
        cpu[service] = cpu.get(service, 0.0) + cores
    for name, mib in stack.anon_mib().items():
        service = service_of(name)
        anon[service] = anon.get(service, 0.0) + mib
    return memory, cpu, anon


def cpu_counters(stack: BenchStack) -> tuple[float, dict[str, float], float | None]:
    """(monotonic time, cumulative CPU-s by service, cumulative CPU-s of all containers)."""
    return time.monotonic(), stack.cpu_seconds(), all_containers_cpu_seconds()


def cpu_between(before: tuple, after: tuple) -> dict[str, float]:
    """Cores by service between two cpu_counters(); the rest of all containers' CPU is the run
    containers' (a service restarted in between counts from zero)."""
    elapsed = after[0] - before[0]
    cores = {service: max(0.0, used - before[1].get(service, 0.0)) / elapsed for service, used in after[1].items()}
    cores["run containers"] = max(0.0, (after[2] - before[2]) / elapsed - sum(cores.values()))
    return cores


def connections(db) -> dict[str, int]:
    """Client connections by role, not counting this one."""
    with db.cursor() as cur:
        cur.execute("SELECT usename, count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                    "AND usename IS NOT NULL AND pid <> pg_backend_pid() GROUP BY usename")
        return dict(cur.fetchall())


def last_run_row(db) -> int:
    with db.cursor() as cur:
        cur.execute("SELECT coalesce(max(id), 0) FROM runs")
        return cur.fetchone()[0]


def runs_by_status(db, after_row: int) -> tuple[dict[str, int], list[str], dict[str, list[str]]]:
    """Runs created after row `after_row` of Dagster's runs table, by status; the failed ones the
    platform is to blame for ("<run id> <job>"); and those a blocking check refused, with its checks."""
    with db.cursor() as cur:
        cur.execute("SELECT status, count(*) FROM runs WHERE id > %s GROUP BY status", (after_row,))
        counts = dict(cur.fetchall())
        cur.execute("SELECT run_id, pipeline_name FROM runs WHERE id > %s AND status = ANY(%s) ORDER BY id",
                    (after_row, list(FAILED)))
        failed = cur.fetchall()
        cur.execute("SELECT run_id, event FROM event_logs WHERE run_id = ANY(%s) "
                    "AND dagster_event_type = 'ASSET_CHECK_EVALUATION'", ([run_id for run_id, _ in failed],))
        refusals = failed_blocking_checks(cur.fetchall())
    blamed = [f"{run_id} {job}" for run_id, job in failed if run_id not in refusals]
    return counts, blamed, {f"{run_id} {job}": refusals[run_id] for run_id, job in failed if run_id in refusals}


def failed_blocking_checks(rows: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Run id -> "asset/check partition" of each failed blocking check, from (run id, event JSON) rows."""
    refused: dict[str, list[str]] = {}
    for run_id, event in rows:
        evaluation = json.loads(event)["dagster_event"]["event_specific_data"]
        if evaluation.get("blocking") and not evaluation.get("success"):
            key = "/".join(evaluation["asset_key"]["path"])
            refused.setdefault(run_id, []).append(f"{key}/{evaluation['check_name']} {evaluation.get('partition') or ''}".strip())
    return refused


def markdown(result: dict) -> str:
    v = result["verdicts"]
    lines = [f"# Soak {result['started']}: {result['minutes']} min, live demo on "
             f"(a day every {result['settings']['REPLAY_SECONDS_PER_DAY']} s), watchdog on\n",
             f"{result['machine_cpus']} CPUs; {len(result['samples'])} samples every {result['interval_s']} s; "
             f"memory slopes after a {WARM_UP_MINUTES}-minute warm-up.\n",
             "| check | measured | verdict |", "|---|---|---|"]
    runs = v["runs"]
    lines.append(f"| days the replay landed | {v['days_landed']} | – |")
    lines.append(f"| failed runs (FAILURE, CANCELED), not counting refused input | {runs['failed']} of "
                 f"{runs['total']} runs ({', '.join(f'{k} {n}' for k, n in sorted(runs['by_status'].items()))}) | "
                 f"{'yes' if runs['failed'] == 0 else 'no'} |")
    refused = runs.get("refused_by_checks", {})
    lines.append(f"| runs refused by a blocking check (bad input, by design) | {len(refused)}"
                 + (": " + "; ".join(f"{run} ({', '.join(checks)})" for run, checks in refused.items()) if refused else "")
                 + " | – |")
    c = v["connections"]
    lines.append(f"| Postgres connections, peak | {c['max_total']} (by role: "
                 f"{', '.join(f'{k} {n}' for k, n in sorted(c['max_by_role'].items()))}); budget {c['budget']}, "
                 f"role limits {', '.join(f'{k} {n}' for k, n in c['role_limits'].items())} | "
                 f"{'yes' if c['within_budget'] else 'no'} |")
    e = v["exited_run_containers"]
    lines.append(f"| exited run containers (kept {result['settings']['RUN_CONTAINER_KEEP_MINUTES']} min) | "
                 f"most {e['max_first_half']} in the first half, {e['max_second_half']} in the second, "
                 f"{e['last']} at the end | {'yes' if e['bounded'] else 'no'} |")
    lines.append(f"| CPU, whole stack incl. run containers | {v['cpu_cores_mean']:.2f} cores on average "
                 f"(services {v['cpu_cores_services_mean']:.2f}); highest 10-minute mean "
                 f"{v['cpu_cores_max_10min']:.2f} (target <= 0.5) | {'yes' if v['cpu_cores_max_10min'] <= 0.5 else 'no'} |")
    user = v["user_runs_s"]
    if user:
        p50 = statistics.median(user)
        phases = [p for p in v.get("user_run_phases_s", []) if p]
        where = ", ".join(f"{name} {statistics.median(p[name] for p in phases):.2f} s" for name in phases[0]) if phases else ""
        lines.append(f"| a user's trivial run with the demo on, launch -> SUCCESS | p50 {p50:.2f} s "
                     f"({min(user):.2f}-{max(user):.2f}, {len(user)} runs; target <= 3 s)"
                     + (f"; median phases: {where}" if where else "") + f" | {'yes' if p50 <= 3 else 'no'} |")
    stats_mib = v.get("memory_docker_stats", {})
    lines += ["", "| service | mean MiB (docker stats) | first → last MiB (docker stats) | judged: first → last MiB "
              "| slope MiB/h | flat |", "|---|---|---|---|---|---|"]
    for service, m in v["memory"].items():
        d = stats_mib.get(service, {})
        lines.append(f"| {service} | {d.get('mean_mib', '–')} | {d.get('first_mib', '–')} → {d.get('last_mib', '–')} "
                     f"| {m['first_mib']} → {m['last_mib']} | {m['slope_mib_per_h']} | {'yes' if m['flat'] else 'no'} |")
    lines.append("")
    lines.append("Judged on " + ("anonymous memory (cgroup): private pages, what a leak grows; docker stats adds "
                                 "the page cache and shared memory." if v.get("memory_basis") == "anon_mib"
                                 else "docker stats."))
    if runs["failed_runs"]:
        lines += ["", "Failed runs: " + "; ".join(runs["failed_runs"][:20])]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--interval", type=float, default=30, help="seconds between samples")
    parser.add_argument("--keep-minutes", type=int, default=15,
                        help="RUN_CONTAINER_KEEP_MINUTES: shorter than the soak, so pruning shows in it")
    parser.add_argument("--seconds-per-day", type=int, default=10, help="REPLAY_SECONDS_PER_DAY (the default pace)")
    parser.add_argument("--user-runs", type=int, default=5, help="canary runs timed at the end, demo still on")
    args = parser.parse_args()
    # The whole year, as the default stack replays it (the harness's own default stops after 5 days).
    settings = {"REPLAY_ENABLED": "true", "REPLAY_SECONDS_PER_DAY": str(args.seconds_per_day),
                "REPLAY_START": "2013-01-01", "REPLAY_END": "2013-12-31",
                "RUN_CONTAINER_KEEP_MINUTES": str(args.keep_minutes)}
    started = utc_now()
    samples: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="flights-soak-") as workdir:
        stack = BenchStack(Path(workdir), **settings)
        try:
            print(f"building images, stack {stack.project} ...", flush=True)
            stack.build()
            stack.compose("up", "-d", "--wait", "--wait-timeout", "300")
            stack.wait_loaded()
            db = psycopg2.connect(**{**stack.postgres_dsn, "dbname": "dagster"})
            db.autocommit = True
            first_row, begin = last_run_row(db), time.monotonic()
            end = begin + args.minutes * 60
            counters = cpu_counters(stack)
            while time.monotonic() < end:
                tick = time.monotonic()
                memory, cpu, anon = stats(stack)
                counters, measured = cpu_counters(stack), counters
                if counters[2] is not None and measured[2] is not None:
                    cpu = cpu_between(measured, counters)
                sample = {"t": round(tick - begin, 1), "memory_mib": memory, "cpu_cores": cpu, "anon_mib": anon,
                          "connections": connections(db),
                          "exited_run_containers": len(stack.run_containers("status=exited")),
                          "runs_created": last_run_row(db) - first_row}
                samples.append(sample)
                print(f"{sample['t']:7.0f}s  mem {sum(memory.values()):6.0f} MiB  cpu {sum(cpu.values()):4.2f}  "
                      f"conn {sum(sample['connections'].values()):3d}  exited {sample['exited_run_containers']:3d}  "
                      f"runs {sample['runs_created']:4d}",
                      flush=True)
                time.sleep(max(0.0, args.interval - (time.monotonic() - tick)))
            user_runs, user_phases = [], []
            for _ in range(args.user_runs):
                try:
                    timing = launch_and_time(stack)
                    user_runs.append(timing["success_s"])
                    user_phases.append(timing["phases"])
                except RuntimeError as exc:  # reported, not raised: the other figures still count
                    print(f"user run: {exc}", flush=True)
            by_status, failed_runs, refused = runs_by_status(db, first_row)
            landed = stack.landed("flights")
            db.close()
            basis = "anon_mib" if any(sample["anon_mib"] for sample in samples) else "memory_mib"
            verdicts = {
                "days_landed": len(landed),
                "runs": {"by_status": by_status, "total": sum(by_status.values()),
                         "failed": len(failed_runs), "failed_runs": failed_runs, "refused_by_checks": refused},
                "memory_basis": basis,
                "memory": memory_verdicts(samples, WARM_UP_MINUTES * 60, basis),
                "memory_docker_stats": memory_verdicts(samples, WARM_UP_MINUTES * 60),
                "connections": connection_verdict(samples),
                "exited_run_containers": exited_verdict(samples),
                "cpu_cores_mean": statistics.fmean(sum(s["cpu_cores"].values()) for s in samples),
                "cpu_cores_max_10min": rolling_max_mean(samples, 600),
                "user_runs_s": user_runs,
                "user_run_phases_s": user_phases,
                "cpu_cores_services_mean": statistics.fmean(
                    sum(v for k, v in s["cpu_cores"].items() if k != "run containers") for s in samples),
            }
        finally:
            logs = stack.logs(100)
            stack.down()
    result = {"started": started, "finished": utc_now(), "minutes": args.minutes, "interval_s": args.interval,
              "settings": settings, "machine_cpus": os.cpu_count(),
              "git": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                    cwd=RESULTS.parent).stdout.strip(),
              "verdicts": verdicts, "samples": samples, "logs_tail": logs}
    RESULTS.mkdir(exist_ok=True)
    # A shorter soak (a check while developing) does not overwrite the hour's result of the day.
    stem = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d") + "-soak" + ("" if args.minutes == 60 else f"-{args.minutes:g}min")
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(markdown(result))
    print("\n" + markdown(result))
    print(f"wrote {RESULTS / stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
