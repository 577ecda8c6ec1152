import pytest

from stack.catalog import CatalogError, FlowPackage, checked, defaults, imported_flow_modules, packages
from stack.settings import load_stack_settings


def declare(**declared):
    return checked("flows/x/deployment.py", {**defaults(load_stack_settings()), **declared}, set(declared))


def test_undeclared_names_take_the_stacks_defaults():
    deployment = declare()
    assert deployment.project == "Data office" and deployment.labels == ("users-report",)
    assert deployment.max_running == 0 and deployment.memory_bytes == 2 * 2**30 and deployment.alerts


@pytest.mark.parametrize(
    "declared, line",
    [
        ({"MAX_RUNNING": -1}, "flows/x/deployment.py: MAX_RUNNING=-1 is not allowed: use a whole number"),
        ({"MAX_RUNNING": True}, "MAX_RUNNING=True is not allowed"),
        ({"LABELS": "a"}, "flows/x/deployment.py: LABELS='a' is not allowed: use a list of names"),
        ({"MEMORY_LIMIT": "5m"}, "MEMORY_LIMIT='5m' is not allowed: use Docker's form of at least 6 MiB"),
        ({"CPU_LIMIT": -1}, "CPU_LIMIT=-1 is not allowed: use a number of CPUs"),
        ({"SECRETS": ("1BAD",)}, "the secret name '1BAD' is not allowed"),
        ({"ALERTS": "yes"}, "ALERTS='yes' is not allowed: use True or False"),
        ({"PROJECT": " "}, "PROJECT=' ' is not allowed: use a project name"),
    ],
)
def test_a_bad_declaration_is_one_line_naming_it(declared, line):
    with pytest.raises(CatalogError, match=line.replace("(", r"\(").replace(")", r"\)")):
        declare(**declared)


def test_a_bad_stack_default_names_the_stacks_setting():
    settings = defaults(load_stack_settings())
    with pytest.raises(CatalogError, match="^FLOW_MEMORY_LIMIT='lots' is not allowed"):
        checked("flows/x/deployment.py", {**settings, "MEMORY_LIMIT": "lots"})


def test_the_packages_are_the_folders_with_a_flows_py_and_only_names_one():
    names = [package.name for package in packages()]
    assert "users_report" in names and "shared" not in names
    assert [package.name for package in packages(only="users_report")] == ["users_report"]
    with pytest.raises(CatalogError, match="FLOW='nope' is not a flow package: use one of"):
        packages(only="nope")


def test_imported_flow_modules_and_their_parents(tmp_path):
    source = tmp_path / "m.py"
    source.write_text(
        "import os\nfrom flows.shared.settings import text\nimport flows.a.b\nfrom . import x\n"
    )
    assert imported_flow_modules(source) == {
        "flows.shared", "flows.shared.settings", "flows.shared.settings.text", "flows.a", "flows.a.b"
    }  # fmt: skip


def make_package(root, name, files):
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return FlowPackage(name, root)


def test_a_version_changes_with_its_own_code_and_what_it_imports_not_with_other_flows(tmp_path):
    files = {"requirements.txt": "prefect\n", "flows/__init__.py": "", "flows/shared/util.py": "X = 1\n",
             "flows/a/flows.py": "from flows.shared.util import X\n", "flows/b/flows.py": ""}  # fmt: skip
    package = make_package(tmp_path, "a", files)
    first = package.version()
    assert len(first) == 12 and first == package.version()
    (tmp_path / "flows/b/flows.py").write_text("changed = True\n")
    assert package.version() == first
    (tmp_path / "flows/shared/util.py").write_text("X = 2\n")
    assert package.version() != first


def test_an_unimportable_module_is_named(tmp_path, monkeypatch):
    package = FlowPackage("users_report")
    monkeypatch.setattr(package.__class__, "folder", property(lambda self: tmp_path))
    (tmp_path / "deployment.py").write_text("")
    monkeypatch.setattr(
        "importlib.import_module", lambda name: (_ for _ in ()).throw(ImportError("no pandas"))
    )
    with pytest.raises(
        CatalogError, match=r"^flows/users_report/deployment.py cannot be imported: ImportError"
    ):
        package.deployment(load_stack_settings())
