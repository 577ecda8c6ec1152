import pytest
from prefect.engine import signals

from demo.users_api import users_csv
from flows.users_report import pages


def page(tmp_path, text, keep=3):
    path = tmp_path / "page-000001.csv"
    path.write_text(text)
    return pages.Page(number=1, page_size=5, keep=keep, seed="s", path=path, started=0.0)


def test_a_page_is_trimmed_to_what_it_keeps_and_summed_up(tmp_path):
    summary = pages.parse_page(page(tmp_path, users_csv("s", 1, 5), keep=3))
    assert summary.rows == 3 and "login.uuid" in summary.columns
    assert sum(summary.by_nat.values()) == 3 and sum(summary.by_gender.values()) == 3
    assert (tmp_path / "page-000001.csv").read_text().count("\n") == 4  # header and 3 users


def test_a_page_without_the_columns_the_summary_needs_fails_without_retries(tmp_path):
    with pytest.raises(signals.ENDRUN) as ended:
        pages.parse_page(page(tmp_path, "name,email\na,b\n"))
    assert ended.value.state.is_failed() and "gender" in ended.value.state.message


def test_rows_are_appended_with_one_header_and_a_final_newline(tmp_path):
    first, second = tmp_path / "1.csv", tmp_path / "2.csv"
    first.write_text("a,b\n1,2\n")
    second.write_text("a,b\r\n3,4")  # no final newline
    out_path = tmp_path / "out.csv"
    with open(out_path, "wb") as out:
        pages.append_rows(first, out, with_header=True)
        pages.append_rows(second, out, with_header=False)
    assert out_path.read_bytes() == b"a,b\n1,2\n3,4\n"
