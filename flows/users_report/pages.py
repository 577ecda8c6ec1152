"""Pages of users: what one request to the users API asks for, and how a downloaded page
is checked and joined into the report."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Tuple

from prefect.engine import signals
from prefect.engine.state import Failed

# pandas and pyarrow load with the first page read, not with the flow: their 0.6 s, at the
# run's start, would keep it from Running that much longer (make e2e's running_when_busy).
if TYPE_CHECKING:
    import pandas as pd

# The columns the report's summary needs; the API sends them all in its CSV header.
REQUIRED_COLUMNS = ("gender", "login.uuid", "nat")
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class Page:
    """One request to the users API: page `number` of pages holding `page_size` users each."""

    number: int
    page_size: int
    keep: int  # users of this page that go into the report (fewer on a trimmed last page)
    seed: str
    path: Path
    started: float  # when the run planned its pages (epoch seconds): its waits count from here
    waited: float = 0.0  # seconds this page's download waited for the users API's limit


@dataclass(frozen=True)
class PageSummary:
    path: Path
    rows: int
    columns: Tuple[str, ...]
    first_uuid: str
    by_nat: Dict[str, int]
    by_gender: Dict[str, int]
    started: float
    waited: float


def fail_now(message: str):
    """Fails the task without retries: asking again cannot fix the answer."""
    raise signals.ENDRUN(Failed(message))


def _read_csv(path: Path, **options) -> pd.DataFrame:
    # Every column as text, nothing turned into NaN: postcodes, phones and names reach the
    # report exactly as the API sent them.
    import pandas as pd

    return pd.read_csv(path, dtype=str, keep_default_na=False, **options)


def _header(path: Path) -> Tuple[str, ...]:
    with open(path, newline="", encoding="utf-8") as page:
        return tuple(next(csv.reader(page), ()))


def _read_users(path: Path) -> pd.DataFrame:
    """The page's users, only the columns the checks and the summary need (the report is
    the page's own bytes). pyarrow reads a page four times as fast as pandas' own parser,
    mostly outside the GIL, so pages are read while others download; it refuses a malformed
    page without saying where, and pandas' parser then reads it to find the user."""
    import pyarrow

    try:
        return _read_csv(path, usecols=list(REQUIRED_COLUMNS), engine="pyarrow")
    except pyarrow.ArrowInvalid:
        return _read_csv(path, usecols=list(REQUIRED_COLUMNS))


def parse_page(page: Page) -> PageSummary:
    """Reads one page into a DataFrame, checks it is whole, trims it to the users kept."""
    import pandas as pd

    what = f"page {page.number} of the users API"
    try:
        columns = _header(page.path)
    except UnicodeDecodeError as exc:
        fail_now(f"{what} is not valid CSV: {exc}")
    if not columns:
        fail_now(f"{what} has no CSV in it")
    missing = [column for column in REQUIRED_COLUMNS if column not in columns]
    if missing:
        fail_now(f"{what} has no CSV header with the API's columns (missing {', '.join(missing)})")
    try:
        df = _read_users(page.path)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        fail_now(f"{what} is not valid CSV: {str(exc).strip()}")
    if len(df) < page.keep:
        fail_now(f"{what} has {len(df)} users where {page.keep} were asked for")
    # The API fills `nat`, its last column, for every user; pandas pads a short row with ""
    # (nothing may become NaN), so a user without it marks a cut-off or malformed row.
    no_nat = df.index[df["nat"] == ""]
    if len(no_nat):
        fail_now(f"{what} is truncated or malformed: user {no_nat[0] + 1} has no nat")
    if not df["login.uuid"].is_unique:
        fail_now(f"{what} repeats users (duplicate login.uuid)")
    if len(df) > page.keep:  # the last page only
        _read_csv(page.path).head(page.keep).to_csv(page.path, index=False)
        df = df.head(page.keep)
    return PageSummary(
        path=page.path,
        rows=len(df),
        columns=columns,
        first_uuid=df["login.uuid"].iloc[0],
        by_nat=df["nat"].value_counts().to_dict(),
        by_gender=df["gender"].value_counts().to_dict(),
        started=page.started,
        waited=page.waited,
    )


def append_rows(source: Path, out, with_header: bool) -> None:
    """Copies a page's CSV to `out`, its header only when asked, ending in a newline.

    The kernel copies the rows (sendfile), not Python: the join of a million users costs a
    fifth of the CPU time, on any file system.
    """
    with open(source, "rb") as src:
        header = src.readline()
        if with_header:
            out.write(header.rstrip(b"\r\n") + b"\n")
        out.flush()  # sendfile writes at the file's own offset, behind out's buffer
        offset, size = len(header), os.fstat(src.fileno()).st_size
        while offset < size:
            sent = os.sendfile(out.fileno(), src.fileno(), offset, size - offset)
            if not sent:
                break
            offset += sent
        if offset > len(header) and os.pread(src.fileno(), 1, offset - 1) != b"\n":
            out.write(b"\n")
