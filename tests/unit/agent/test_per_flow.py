import pytest

from agent import per_flow
from stack.catalog import checked, defaults
from stack.settings import load_stack_settings


def deployment(**declared):
    return checked("flows/x/deployment.py", {**defaults(load_stack_settings()), **declared}, set(declared))


def test_secrets_are_name_value_lines_with_comments_and_blank_lines(tmp_path):
    path = tmp_path / "secrets.env"
    path.write_text("# a comment\n\nTOKEN=a=b c\n  # indented comment\nEMPTY=\n")
    assert per_flow.read_secrets(str(path)) == {"TOKEN": "a=b c", "EMPTY": ""}
    assert per_flow.read_secrets(str(tmp_path / "absent")) == {}


def test_a_bad_secrets_line_is_named_by_number_never_shown(tmp_path):
    path = tmp_path / "secrets.env"
    path.write_text("TOKEN=ok\nhunter2 is my password\n")
    with pytest.raises(per_flow.SecretsError) as error:
        per_flow.read_secrets(str(path))
    assert str(error.value) == "line 2 of the flows' secrets file is not NAME=value"
    assert "hunter2" not in str(error.value)


def test_an_unreadable_secrets_file_says_why(tmp_path):
    with pytest.raises(per_flow.SecretsError, match="cannot be read"):
        per_flow.read_secrets(str(tmp_path))  # a folder


def test_a_missing_secret_is_named_with_its_package():
    declared = deployment(SECRETS=("TOKEN", "KEY"))
    assert per_flow.missing_secret(declared, {"TOKEN": "t", "KEY": "k"}, "x") is None
    problem = per_flow.missing_secret(declared, {"TOKEN": "t"}, "x")
    assert problem.startswith("the secret KEY of flows/x is not in the flows' secrets file")


def test_a_flow_gets_only_the_settings_and_secrets_it_names():
    declared = deployment(ENV=("PAGE_SIZE", "UNSET"), SECRETS=("TOKEN",))
    environ = {"PAGE_SIZE": "10", "OTHER": "no", "UNSET": ""}
    env = per_flow.flow_env(declared, {"TOKEN": "t", "KEY": "k"}, environ)
    assert env == {"PAGE_SIZE": "10", "PREFECT__CONTEXT__SECRETS__TOKEN": "t"}


def test_host_config_limits_memory_without_swap_and_cpus():
    assert per_flow.host_config(deployment(MEMORY_LIMIT="512m", CPU_LIMIT=1.5)) == {
        "mem_limit": 512 * 2**20,
        "memswap_limit": 512 * 2**20,
        "nano_cpus": 1_500_000_000,
    }
    assert "nano_cpus" not in per_flow.host_config(deployment(CPU_LIMIT=0))


def test_the_messages_name_the_setting_that_changes_them():
    declared = deployment(MAX_RUNNING=2, MEMORY_LIMIT="400m")
    assert per_flow.waiting_message("Flow", "x", declared).startswith(
        "Waiting: Flow runs at most 2 at once (MAX_RUNNING in flows/x/deployment.py)"
    )
    assert "memory limit of 400m (MEMORY_LIMIT in flows/x/deployment.py" in per_flow.out_of_memory_message(
        "x", declared
    )
