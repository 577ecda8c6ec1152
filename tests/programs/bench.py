"""`make bench`: the pipeline's speed and memory against the fake users API on loopback.

Each measurement runs in a fresh process; its wall time counts the run itself (not
Python's start-up and imports, which do not grow with the users asked for), its peak
RSS the whole process; the million and its floor run in turn, five pairs, and their ratio is
the median of the pairs' (with its spread): the floor moves with the machine. Goals: project
≤ 1.15× a naive one-request script at 5,000 users;
time per user growing by at most 10% from 100,000 to 1,000,000 users, peak RSS < 400 MiB;
pages downloaded concurrently ≥ 3× faster than one by one at 50 ms per request; against
an API with a limit (scaled down from 20,000 users per 5 min), ≥ 90% of the fastest pace
the limit allows; at 1,000,000 users, ≤ 1.25× the floor (the same pages fetched 4 at a time
and joined, nothing checked), with where each one's time goes. Then the same million on a
local Dask cluster of 2 workers, for the README's figures (no goal: here the workers share
the host's 2 cores). The fakes have no limit unless said, and the runs pace to none. Last,
on a stack of the e2e's own, the two waits a person feels: `make register` after a
one-line edit, ≤ 2× its `docker build`; click to Running on a busy stack, p95 ≤ 3 s.
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from flows.users_report.pacing import minimum_wait
from flows.users_report.utils import duration
from tests.programs.door_bench import door_overhead
from tests.programs.exporter_bench import exporter_scrape
from tests.support import ROOT, free_port
from tests.support.dask_cluster import local_cluster

MIB = 1024  # ru_maxrss is in KiB


class Parts:
    """Where a run's time goes: for each part, its first start and last end (the span it
    covers in the run's wall time) and its seconds summed over the threads that did it."""

    def __init__(self):
        self.lock, self.spent = threading.Lock(), {}

    def timed(self, part: str, function):
        def timed_call(*args, **kwargs):
            begun = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                ended = time.perf_counter()
                with self.lock:
                    first, last, total = self.spent.get(part, (begun, ended, 0.0))
                    self.spent[part] = (min(first, begun), max(last, ended), total + ended - begun)

        return timed_call

    def summary(self, start: float) -> dict:
        """Each part: [its span's start and end, from the run's start; its summed seconds]."""
        return {
            part: [first - start, last - start, total] for part, (first, last, total) in self.spent.items()
        }


def child(kind: str, n_users: int) -> None:
    """Runs one measurement in this process and prints its result as JSON, with its parts."""
    parts = Parts()
    if kind == "naive":
        import io

        import pandas as pd
        import requests

        start = time.perf_counter()
        url = os.environ["RANDOMUSER_URL"]
        text = requests.get(url, params={"results": n_users, "format": "csv", "seed": "naive"}).text
        df = pd.read_csv(io.StringIO(text))
        df.to_csv(Path(os.environ["REPORTS_DIR"]) / "report.csv", index=False)
        rows = len(df)
    elif kind == "floor":
        start = time.perf_counter()
        rows = fetch_and_concatenate(
            n_users, os.environ["RANDOMUSER_URL"], Path(os.environ["REPORTS_DIR"]), parts=parts
        )
    else:
        import dask.threaded  # noqa: F401  the executor imports it on first use
        import pandas  # noqa: F401  the flow loads them with its first page: not the run's time
        import pyarrow  # noqa: F401

        from flows.users_report import tasks
        from flows.users_report.flows import flow, report

        if not os.environ.get("DASK_ADDRESS"):  # on Dask the tasks run, pickled, elsewhere
            tasks._fetch = parts.timed("fetch", tasks._fetch)
            tasks.parse_page = parts.timed("parse", tasks.parse_page)
            tasks.append_rows = parts.timed("join and write", tasks.append_rows)

        start = time.perf_counter()
        state = flow.run(parameters={"n_users": n_users}, run_on_schedule=False)
        assert state.is_successful(), state
        with open(state.result[report].result, "rb") as handle:
            rows = sum(1 for _ in handle) - 1  # the fake API's values hold no line breaks
    print(json.dumps({"seconds": time.perf_counter() - start, "rows": rows, "parts": parts.summary(start)}))


def fetch_and_concatenate(n_users: int, url: str, folder: Path, parts: Parts, page_size: int = 5000) -> int:
    """The floor of a run on one host: the same pages, 4 at a time, streamed to files, then
    joined into one (one header); nothing checked. Returns the rows written."""
    from concurrent.futures import ThreadPoolExecutor

    import requests

    session = requests.Session()

    def fetch(page: int) -> Path:
        path = folder / f"page-{page:06d}.csv"
        params = {"results": page_size, "format": "csv", "seed": "floor", "page": page}
        with session.get(url, params=params, stream=True) as answer, open(path, "wb") as out:
            for chunk in answer.iter_content(1 << 20):
                out.write(chunk)
        return path

    def join(paths: list) -> int:
        rows = 0
        with open(folder / "report.csv", "wb") as out:
            for number, path in enumerate(paths):
                with open(path, "rb") as page:
                    header = page.readline()
                    if number == 0:
                        out.write(header)
                    for line in page:
                        out.write(line)
                        rows += 1
        return rows

    with ThreadPoolExecutor(4) as pool:
        paths = list(pool.map(parts.timed("fetch", fetch), range(1, n_users // page_size + 1)))
    return parts.timed("join and write", join)(paths)


def measure(kind: str, n_users: int, url: str, repeat: int = 1, **settings) -> dict:
    """The median of `repeat` runs, by wall time."""
    results = sorted(
        (run_once(kind, n_users, url, settings) for _ in range(repeat)), key=lambda result: result["seconds"]
    )
    return results[len(results) // 2]


def interleaved(kind: str, floor_kind: str, n_users: int, url: str, pairs: int = 5) -> tuple:
    """`pairs` runs of each, in turn (A B A B ...), so that the machine's drift over the
    minutes they take falls on both alike: (median of A, median of B, the ratios A/B pair
    by pair, sorted)."""
    runs = [(run_once(kind, n_users, url, {}), run_once(floor_kind, n_users, url, {})) for _ in range(pairs)]
    ratios = sorted(a["seconds"] / b["seconds"] for a, b in runs)

    def median(results):
        return sorted(results, key=lambda result: result["seconds"])[len(results) // 2]

    return median([a for a, _ in runs]), median([b for _, b in runs]), ratios


def run_once(kind: str, n_users: int, url: str, settings: dict, reports: str = None) -> dict:
    """One measured run, writing into `reports` (default: a folder of its own)."""
    with tempfile.TemporaryDirectory() as own_reports:
        env = run_env(url, reports or own_reports, settings)
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.programs.bench", "--child", kind, str(n_users)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        if status != 0:
            raise SystemExit(f"bench: the {kind} run of {n_users} users failed")
    result = json.loads(output.strip().splitlines()[-1])
    result["peak_mib"] = usage.ru_maxrss / MIB
    if result["rows"] != n_users:
        raise SystemExit(f"bench: {kind} wrote {result['rows']} rows for {n_users} users")
    return result


def run_env(url: str, reports: str, settings: dict) -> dict:
    env = {
        **os.environ,
        "RANDOMUSER_URL": url,
        "REPORTS_DIR": reports,
        "PREFECT__LOGGING__LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
        "USERS_API_LIMIT": "0",
    }
    env.update({key: str(value) for key, value in settings.items()})
    return env


def on_dask(n_users: int, url: str, workers: int = 2) -> dict:
    """One run on a local Dask cluster (`workers` processes of 2 threads, as many downloads
    at once as one host's 4 threads), sharing the run's reports folder: what DASK_ADDRESS
    costs where the workers share the host. Its peak RSS is the flow runner's only."""
    with tempfile.TemporaryDirectory() as reports:
        with local_cluster(workers, run_env(url, reports, {}), Path(reports), lifetime=600) as (address, _):
            return run_once("project", n_users, url, {"DASK_ADDRESS": address}, reports)


@contextmanager
def fake_api(latency: float = 0.0, limit: int = 0, window: float = 300):
    """The fake users API in its own process, so it does not share the measured one's GIL."""
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "demo.users_api",
            "--port",
            str(port),
            "--latency",
            str(latency),
            "--lifetime",
            "1800",
            "--limit",
            str(limit),
            "--window",
            str(window),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        server.stdout.readline()  # it prints its address once it listens
        yield f"http://127.0.0.1:{port}/api/"
    finally:
        server.terminate()
        server.wait()


def where_time_goes(result: dict) -> str:
    """Each part's span of the run's wall time, and its seconds summed over threads."""
    return (
        "; ".join(
            f"{part} {first:.1f}-{last:.1f} s ({total:.1f} s over threads)"
            for part, (first, last, total) in sorted(result["parts"].items(), key=lambda item: item[1][0])
        )
        + f"; run ends at {result['seconds']:.1f} s"
    )


def line(label: str, n_users: int, result: dict, note: str = "") -> None:
    rate = n_users / result["seconds"]
    print(
        f"{label:<34} {n_users:>9,} users {result['seconds']:>8.2f} s "
        f"{rate:>10,.0f} users/s {result['peak_mib']:>7.0f} MiB peak RSS  {note}",
        flush=True,
    )


def main() -> None:
    with fake_api() as url:
        naive = measure("naive", 5000, url, repeat=5)
        project = measure("project", 5000, url, repeat=5)
        line("naive one-request script", 5000, naive)
        line("project", 5000, project, f"ratio {project['seconds'] / naive['seconds']:.2f}x (goal <= 1.15x)")
        per_user = {}
        hundred_thousand = measure("project", 100_000, url, repeat=3)
        per_user[100_000] = hundred_thousand["seconds"] / 100_000
        line("project", 100_000, hundred_thousand, f"{per_user[100_000] * 1e6:.1f} us/user")
        # The million and its floor in turn, five of each: the floor moves with the machine,
        # so only ratios taken pair by pair show a 5 % change above the noise.
        million, floor, ratios = interleaved("project", "floor", 1_000_000, url)
        per_user[1_000_000] = million["seconds"] / 1_000_000
        line("project", 1_000_000, million, f"{per_user[1_000_000] * 1e6:.1f} us/user (goal: peak < 400 MiB)")
        drift = per_user[1_000_000] / per_user[100_000] - 1
        print(f"time per user, 1,000,000 vs 100,000 users: {drift:+.1%} (goal: at most +10%)")
        line(
            "floor: fetch 200 pages, join them",
            1_000_000,
            floor,
            f"project / floor, pair by pair: median {ratios[len(ratios) // 2]:.2f}x, "
            f"{ratios[0]:.2f}-{ratios[-1]:.2f}x over {len(ratios)} pairs (goal <= 1.25x)",
        )
        print(f"  where the million's time goes, project: {where_time_goes(million)}")
        print(f"  where the million's time goes, floor:   {where_time_goes(floor)}", flush=True)
        dask = on_dask(1_000_000, url)
        line(
            "project on Dask, 2 local workers",
            1_000_000,
            dask,
            f"{dask['seconds'] / (per_user[1_000_000] * 1_000_000):.2f}x one host's time (same 2 cores)",
        )
    with fake_api(latency=0.05) as url:
        # 80 pages of 100 users: pages small enough that waiting on the API, not the CPU
        # (Prefect's own ~8 ms a task run, then parsing), sets the pace.
        pages = {"PAGE_SIZE": 100, "repeat": 3}
        sequential = measure("project", 8000, url, DOWNLOAD_WORKERS=1, **pages)
        concurrent = measure("project", 8000, url, DOWNLOAD_WORKERS=4, **pages)
        line("50 ms latency, 1 page at a time", 8000, sequential)
        line(
            "50 ms latency, 4 pages at a time",
            8000,
            concurrent,
            f"speed-up {sequential['seconds'] / concurrent['seconds']:.1f}x (goal >= 3x)",
        )
    rate_limit(per_user[1_000_000])
    print(door_overhead(), flush=True)
    print(exporter_scrape(), flush=True)
    stack_ratios()


def rate_limit(seconds_per_user: float) -> None:
    """The pace against a limit of 4,000 users per 4 s (the real one scaled down), then the
    arithmetic for 1,000,000 users at the real limit, with the work measured without one."""
    limit, window, n_users, page_size = 4000, 4, 20_000, 1000
    with fake_api(limit=limit, window=window) as url:
        result = measure(
            "project", n_users, url, PAGE_SIZE=page_size, USERS_API_LIMIT=limit, USERS_API_WINDOW=window
        )
    least = minimum_wait(n_users, page_size, limit, window)
    share = least / result["seconds"]
    line(
        f"limit {limit:,} users per {window} s",
        n_users,
        result,
        f"{share:.0%} of the fastest pace the limit allows ({least:g} s) (goal >= 90%)",
    )
    real_least = minimum_wait(1_000_000, 5000, 20_000, 300)
    work = seconds_per_user * 1_000_000
    print(
        f"1,000,000 users at 20,000 per 5 min (the defaults): 200 pages, 4 a window, "
        f"50 windows: {duration(real_least)} of waiting + {work:.0f} s of work (measured "
        f"above without a limit) = {duration(real_least + work)} predicted",
        flush=True,
    )


REGISTERS = 3  # one-line edits registered, for the register ratio's spread


def stack_ratios() -> None:
    """The two waits a person feels, on a stack of the e2e's own (Compose v2): `make
    register` after a one-line flow edit next to `docker build` of it, REGISTERS times,
    and click to Running on a busy stack (tests/e2e/remote.py, runs.py). They need a Docker
    engine, and, where the real images cannot be pulled, root for the e2e's local ones."""
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        print("make register's ratio, click to Running: skipped, no Docker engine answers", flush=True)
        return
    from tests.e2e.remote import timed_register
    from tests.e2e.runs import BUSY_RUNS, BUSY_USERS, CLICKS, click_waits, percentile
    from tests.programs.e2e_base import stack_images
    from tests.programs.e2e_stack import Stack

    chosen, images = stack_images()
    with tempfile.TemporaryDirectory(prefix="bench-stack-") as work:
        stack = Stack("v2", images, Path(work), name="users-report-bench")
        stack.refuse_if_in_use()
        try:
            stack.up()
            registers = sorted((timed_register(stack) for _ in range(REGISTERS)), key=lambda r: r["ratio"])
            waits, busy = click_waits(stack)
        finally:
            stack.tear_down()
    middle = registers[len(registers) // 2]
    parts = ", ".join(f"{step} {seconds:.1f} s" for step, seconds in middle["parts"])
    print(
        f"make register after a one-line edit (Compose v2, images {chosen}): median "
        f"{middle['seconds']:.1f} s = {middle['ratio']:.2f}x its docker build ({middle['floor']:.1f} s), "
        f"{registers[0]['ratio']:.2f}-{registers[-1]['ratio']:.2f}x over {REGISTERS} (goal <= 2x); "
        f"the median's parts: {parts}",
        flush=True,
    )
    seconds = [wait for wait, _ in waits]
    print(
        f"click to Running, {CLICKS} clicks beside runs of {BUSY_USERS:,} users ({BUSY_RUNS} at a "
        f"time, {busy} in all): p50 {percentile(seconds, 0.5):.1f} s, p95 {percentile(seconds, 0.95):.1f} s, "
        f"{seconds[0]:.1f}-{seconds[-1]:.1f} s (goal: p95 <= 3 s)",
        flush=True,
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], int(sys.argv[3]))
    else:
        main()
