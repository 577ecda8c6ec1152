from flows.users_report.__main__ import main


def test_a_bad_setting_is_one_line_and_exit_2_before_any_run(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("PAGE_SIZE", "many")
    monkeypatch.setenv("REPORTS_DIR", str(tmp_path))
    assert main(["--n-users", "5"]) == 2
    assert (
        capsys.readouterr().err
        == "error: PAGE_SIZE='many' is not allowed: use a whole number from 1 to 5,000\n"
    )
    assert list(tmp_path.iterdir()) == []
