"""Every module of the product has its unit tests, in the folder that mirrors it."""

from pathlib import Path

from tests.support import ROOT

PRODUCT = ("agent", "stack", "flows", "scripts", "demo")


def product_modules() -> list:
    found = [path for folder in PRODUCT for path in (ROOT / folder).rglob("*.py")]
    found.append(ROOT / "register.py")
    return sorted(path.relative_to(ROOT) for path in found if path.name != "__init__.py")


def test_every_product_module_has_a_unit_test_module_mirroring_it():
    assert Path("agent/start.py") in product_modules()
    missing = [
        str(module)
        for module in product_modules()
        if not (ROOT / "tests" / "unit" / module.parent / f"test_{module.stem.strip('_')}.py").is_file()
    ]
    assert missing == []
