"""Tasks of the "Users report" flow.

Pages travel between tasks as files in the run's staging folder, never as task results:
Prefect keeps every result in memory until the run ends, and a million users would not fit.
The results themselves are small (which pages, where), kept in the staging folder too.
"""

import os
import re
import shutil
import time
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from functools import lru_cache
from operator import attrgetter
from typing import List
from urllib.parse import quote

import prefect
import requests
from prefect import task
from prefect.backend.artifacts import create_markdown_artifact
from prefect.engine import signals
from prefect.triggers import always_run

from flows.users_report.pacing import LEDGER_NAME, Budget, minimum_wait
from flows.users_report.pages import (
    CHUNK_BYTES,
    Page,
    PageSummary,
    append_rows,
    fail_now,
    parse_page,
)
from flows.users_report.settings import API_MAX_PAGE, Settings, load_settings
from flows.users_report.utils import (
    RUN_NAME,
    check_inputs,
    check_n_users,
    duration,
    log,
    report_name,
    staging_dir,
)

# Retries are part of the task's definition, so these two are read when the flow is built:
# the server keeps them from registration and its zombie killer retries by them (PrefectHQ/
# server 0f74a9a, api/flows.py 313, services/towel/zombie_killer.py 144-169). Every other
# setting is read by each task when it runs.
HTTP_RETRIES, HTTP_RETRY_DELAY = attrgetter("http_retries", "http_retry_delay")(load_settings())


@lru_cache(maxsize=None)
def _session(pool_size: int) -> requests.Session:
    """One HTTP session per process, pooled for the concurrent page downloads."""
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _budget(settings: Settings) -> Budget:
    return Budget(settings.users_api_limit, settings.users_api_window, settings.reports_dir / LEDGER_NAME)


def _limit_text(settings: Settings) -> str:
    return f"{settings.users_api_limit:,} users per {duration(settings.users_api_window)}"


@task
def plan_pages(n_users) -> List[Page]:
    """Checks `n_users` and splits it into pages of one seed, so the pages never overlap;
    says up front how long the users API's limit makes the run wait."""
    try:
        check_inputs(prefect.context.get("parameters", {}))
        n = check_n_users(n_users)
    except ValueError as exc:
        raise signals.FAIL(str(exc)) from None
    settings = load_settings()
    limit = settings.users_api_limit
    page_size = min(n, settings.page_size, limit or settings.page_size)
    page_count = -(-n // page_size)
    if page_count > API_MAX_PAGE:
        raise signals.FAIL(
            f"{n:,} users in pages of {page_size:,} make {page_count:,} pages, but the users "
            f"API serves pages 1 to {API_MAX_PAGE:,}: raise PAGE_SIZE"
        )
    least_wait = minimum_wait(n, page_size, limit, settings.users_api_window)
    if least_wait > settings.users_api_max_wait:
        raise signals.FAIL(
            f"{n:,} users at {_limit_text(settings)} need at least {duration(least_wait)} of waiting, "
            f"more than USERS_API_MAX_WAIT={settings.users_api_max_wait:g} s allows"
        )
    if least_wait:
        log(f"{n:,} users at {_limit_text(settings)}: at least {duration(least_wait)}")
    staging = staging_dir(settings.reports_dir)
    staging.mkdir(parents=True, exist_ok=True)
    seed = prefect.context.flow_run_id.replace("-", "")[:16]
    started = time.time()
    return [
        Page(
            number=number,
            page_size=page_size,
            keep=min(page_size, n - (number - 1) * page_size),
            seed=seed,
            path=staging / f"page-{number:06d}.csv",
            started=started,
        )
        for number in range(1, page_count + 1)
    ]


def _wait(settings: Settings, page: Page, seconds: float, why: str) -> float:
    """Sleeps inside the task (the flow run's heartbeats go on meanwhile) unless the run
    would then have waited past USERS_API_MAX_WAIT; returns the seconds slept."""
    max_wait = settings.users_api_max_wait
    if time.time() + seconds > page.started + max_wait:
        fail_now(
            f"{why} for page {page.number}: waiting {duration(seconds)} more would take this "
            f"run past USERS_API_MAX_WAIT={max_wait:g} s ({_limit_text(settings)})"
        )
    log(f"{why}: waiting {duration(seconds)}; {_limit_text(settings)}")
    time.sleep(seconds)
    return seconds


def _fetch(settings: Settings, page: Page) -> bool:
    """Streams one page to the staging folder; False when the API said 429 (its limit).

    Server errors (5xx), timeouts, broken connections and cut-off bodies fail the try and
    Prefect retries it; any other 4xx fails at once with the API's message.
    """
    url = settings.randomuser_url
    params = {"results": page.page_size, "format": "csv", "seed": page.seed, "page": page.number}
    where = f"page {page.number} from the users API at {url}"
    try:
        with _session(settings.download_workers).get(
            url, params=params, timeout=settings.http_timeout, stream=True
        ) as response:
            status = f"{response.status_code} {response.reason}"
            if response.status_code == 429:
                return False
            if response.status_code >= 500:
                raise signals.FAIL(f"could not download {where}: it answered {status}")
            if response.status_code >= 400:
                fail_now(f"could not download {where}: it answered {status}: {response.text.strip()[:300]}")
            with open(page.path, "wb") as out:
                for chunk in response.iter_content(CHUNK_BYTES):
                    out.write(chunk)
            expected = response.headers.get("Content-Length")
            received = response.raw.tell()
    except requests.Timeout:
        raise signals.FAIL(
            f"could not download {where}: no answer within {settings.http_timeout:g} s"
        ) from None
    except requests.ConnectionError as exc:
        # requests' own text is a 300-character chain of urllib3 reprs: the OS's words say enough.
        said = re.search(r"\[Errno [^\]]*\] ([^'\")]+)", str(exc))
        reason = said[1] if said else type(exc).__name__
        raise signals.FAIL(
            f"could not download {where}: cannot connect ({reason}); without internet, "
            f"`make run OFFLINE=1` runs against the offline users API"
        ) from None
    except requests.RequestException as exc:
        raise signals.FAIL(f"could not download {where}: {exc}") from None
    if expected is not None and int(expected) != received:
        raise signals.FAIL(
            f"could not download {where}: the answer was cut off after {received} of {expected} bytes"
        )
    if received == 0:
        raise signals.FAIL(f"could not download {where}: the answer was empty")
    return True


@task(
    max_retries=HTTP_RETRIES,
    # Prefect refuses a retry delay without retries (HTTP_RETRIES=0).
    retry_delay=timedelta(seconds=HTTP_RETRY_DELAY) if HTTP_RETRIES else None,
)
def download_data(page: Page) -> PageSummary:
    """Downloads one page of users as CSV into the staging folder, within the API's limit,
    then reads it into a DataFrame to check it.

    Waiting for the limit is no failure: a page waits while the run's budget is spent, and
    after a 429 it waits a window and asks again, without using up a retry. Reading the page
    here, while the other pages download, not after all of them, saves a run of 1,000,000
    users two fifths of its time (make bench).
    """
    settings = load_settings()
    budget, waited = _budget(settings), page.waited
    while True:
        while (wait := budget.take(page.page_size)) > 0:
            waited += _wait(settings, page, wait, "users API budget spent")
        if _fetch(settings, page):
            break
        waited += _wait(settings, page, budget.pause(), "users API limit reached (429)")
    # The tutorial's three messages, kept word for word: people and the tests look for them.
    log(f"Dados baixados com sucesso! (page {page.number}, {page.page_size} users asked)")
    return parse_page(replace(page, waited=waited))


@task
def parse_data(pages: List[PageSummary]) -> List[PageSummary]:
    """Checks that the pages, each read into a DataFrame as it arrived, make one table:
    the same columns on every page, and no page sending another page's users."""
    columns = pages[0].columns
    for number, summary in enumerate(pages, start=1):
        if summary.columns != columns:
            fail_now(f"page {number} of the users API has other columns than page 1")
    if len({summary.first_uuid for summary in pages}) != len(pages):
        fail_now("the users API sent the same users for different pages (are seed and page honoured?)")
    rows = sum(summary.rows for summary in pages)
    log(f"Dados convertidos em DataFrame com sucesso! ({rows} users, {len(pages)} pages)")
    return pages


def _timing(settings: Settings, pages: List[PageSummary]) -> str:
    """How long the run took from planning its pages, and what the API's limit cost."""
    took = duration(time.time() - pages[0].started)
    waits = [summary.waited for summary in pages if summary.waited]
    if not waits:
        return f"Took {took}, with no wait for the users API's limit."
    return (
        f"Took {took}; {len(waits)} of {len(pages)} pages waited for "
        f"the users API's limit ({_limit_text(settings)}), the longest {duration(max(waits))}."
    )


def _summary_markdown(
    name: str, link: str, rows: int, columns: int, by_nat: Counter, by_gender: Counter, timing: str
) -> str:
    def table(title: str, counts: Counter) -> str:
        lines = [f"| {title} | users |", "| --- | ---: |"]
        lines += [f"| {key} | {count} |" for key, count in sorted(counts.items())]
        return "\n".join(lines)

    download = f"[Download {name}.csv]({link})\n\n" if link else ""
    return (
        f"# Users report `{name}.csv`\n\n{download}{rows} users, {columns} columns\n\n{timing}\n\n"
        f"{table('nat', by_nat)}\n\n{table('gender', by_gender)}\n"
    )


@task
def save_report(pages: List[PageSummary]) -> str:
    """Joins the pages into this run's report, then makes it the new `report.csv`.

    Both files appear whole or not at all (written aside, then renamed), so a failed run
    leaves the previous report.csv as it was and no partial file behind.
    """
    settings = load_settings()
    reports_dir = settings.reports_dir
    report = reports_dir / report_name()
    latest = reports_dir / "report.csv"
    partial = reports_dir / f".{report.name}.partial"
    try:
        with open(partial, "wb") as out:
            for number, summary in enumerate(pages):
                append_rows(summary.path, out, with_header=number == 0)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, report)
        # report.csv is a second name of this run's file (a copy where the file system
        # has no hard links), swapped in by one rename.
        try:
            os.link(report, partial)
        except OSError:
            shutil.copyfile(report, partial)
        os.replace(partial, latest)
    finally:
        partial.unlink(missing_ok=True)

    rows = sum(summary.rows for summary in pages)
    by_nat = sum((Counter(summary.by_nat) for summary in pages), Counter())
    by_gender = sum((Counter(summary.by_gender) for summary in pages), Counter())
    link = f"{settings.reports_url}{quote(report.name)}" if settings.reports_url else ""
    markdown = _summary_markdown(
        report.stem, link, rows, len(pages[0].columns), by_nat, by_gender, _timing(settings, pages)
    )
    log(f"Dados salvos em report.csv com sucesso!\n{report}\n{markdown}")
    create_markdown_artifact(markdown)
    return str(report)


# Clean-up keeps no result: one written after the staging folder went would make it again.
@task(trigger=always_run, checkpoint=False)
def remove_staging() -> None:
    """Removes the run's downloaded pages, whether the run succeeded or not."""
    shutil.rmtree(staging_dir(load_settings().reports_dir), ignore_errors=True)


# What this flow writes into the reports folder: per-run reports, and what a run that died
# can leave behind (its staging folder, its report half written).
RUN_REPORT = re.compile(rf"{RUN_NAME.pattern}\.csv")
RUN_LEFTOVER = re.compile(rf"\.staging-{RUN_NAME.pattern}|\.{RUN_NAME.pattern}\.csv\.partial")
DAY = 24 * 3600


@task(checkpoint=False)
def remove_old_reports() -> List[str]:
    """After a successful run: deletes this flow's per-run reports older than
    REPORTS_KEEP_DAYS (never report.csv, this run's report, or any other file), and the
    leftovers of runs that died once a day old; logs what went."""
    settings = load_settings()
    keep_days = settings.reports_keep_days
    # A live run may wait for the users API's limit, touching nothing, up to its bound.
    leftover_age = max(DAY, settings.users_api_max_wait + 3600)
    mine = {report_name(), staging_dir(settings.reports_dir).name}
    now, removed = time.time(), []
    # Listed first: deleting while reading a folder may skip entries, and remove_staging
    # deletes in it at the same time.
    for path in list(settings.reports_dir.iterdir()):
        try:
            age = now - path.lstat().st_mtime
        except FileNotFoundError:  # another run's clean-up was first
            continue
        if path.name in mine or path.is_symlink():
            continue
        if keep_days and RUN_REPORT.fullmatch(path.name) and age > keep_days * DAY:
            path.unlink(missing_ok=True)  # another run may have removed it first
        elif RUN_LEFTOVER.fullmatch(path.name) and age > leftover_age:
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        else:
            continue
        removed.append(path.name)
    if removed:
        log(
            f"Removed {len(removed)} old files (REPORTS_KEEP_DAYS={keep_days}): " + ", ".join(sorted(removed))
        )
    return removed
