import pendulum
import prefect
import pytest

from flows.users_report import utils


@pytest.mark.parametrize("value, number", [(1, 1), ("50", 50), (" 7 ", 7), (1_000_000, 1_000_000)])
def test_n_users_takes_whole_numbers_and_digit_strings(value, number):
    assert utils.check_n_users(value) == number


@pytest.mark.parametrize("value", [0, -1, 1_000_001, True, 2.0, "2.5", "ten", None, [3]])
def test_anything_else_is_refused_saying_what_is_allowed(value):
    with pytest.raises(ValueError) as error:
        utils.check_n_users(value)
    assert str(error.value) == (
        f"n_users must be a whole number from 1 to 1,000,000 (an integer or a string of digits); got {value!r}"
    )


def test_an_unknown_input_is_named():
    utils.check_inputs({"n_users": 3})
    with pytest.raises(ValueError, match="^unknown input 'n_user': the flow takes n_users"):
        utils.check_inputs({"n_user": 3})


@pytest.mark.parametrize(
    "seconds, text", [(45, "45 s"), (184, "3 min 4 s"), (120, "2 min"), (14700, "4 h 5 min"), (7200, "2 h")]
)
def test_durations_read_as_people_read_them(seconds, text):
    assert utils.duration(seconds) == text


def test_a_runs_names_come_from_its_start_and_id_and_match_the_pattern(tmp_path):
    start = pendulum.datetime(2026, 1, 2, 3, 4, 5, tz="America/Sao_Paulo")
    with prefect.context(scheduled_start_time=start, flow_run_id="0123abcd-ffff"):
        assert utils.run_name() == "users-report-20260102T060405Z-0123abcd"
        assert utils.report_name() == "users-report-20260102T060405Z-0123abcd.csv"
        assert utils.staging_dir(tmp_path) == tmp_path / ".staging-users-report-20260102T060405Z-0123abcd"
        assert utils.RUN_NAME.fullmatch(utils.run_name())
