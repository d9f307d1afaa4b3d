"""The README teaches: it stays short, its links resolve, and a newcomer who follows it can
copy a strategy into a folder of their own, validate it and run it."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from typer.testing import CliRunner

from sim.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
#: Pages other work streams write; linked by name before they land.
PARALLEL_DOCS = {"docs/metrics.md", "docs/risk-model.md", "docs/decisions.md",
                 "docs/robustness.md", "docs/hardening.md"}
runner = CliRunner()


def _greysim(folder: Path, *args: str):
    old = Path.cwd()
    os.chdir(folder)
    try:
        return runner.invoke(app, list(args))
    finally:
        os.chdir(old)


def test_readme_is_short():
    assert len(README.encode("utf-8")) < 15_000


def test_readme_links_point_at_files():
    links = re.findall(r"\]\(([^)#]+)\)", README)
    missing = [link for link in links if not link.startswith("http")
               and link not in PARALLEL_DOCS and not (ROOT / link).exists()]
    assert not missing, missing


def test_readme_names_the_phase_keys_and_how_extends_resolves():
    for key in ("cadence_days", "min_version", "holiday_multiplier", "ordering", "batch"):
        assert f"{key}:" in README, key
    assert "extends: ../scenarios/baseline.yaml" in README
    assert "relative to the folder of the file that contains it" in README


def _workspace(tmp_path: Path) -> Path:
    """A folder laid out like the repository's root: scenarios/ beside the user's mine/."""
    shutil.copytree(ROOT / "scenarios", tmp_path / "scenarios")
    (tmp_path / "mine").mkdir()
    return tmp_path


def test_a_copied_strategy_runs_once_extends_is_fixed_as_the_readme_says(tmp_path):
    root = _workspace(tmp_path)
    text = (ROOT / "scenarios" / "tier-first.yaml").read_text()
    copy = root / "mine" / "tier-first.yaml"
    copy.write_text(text)
    # as copied, 'extends: baseline.yaml' looks beside the copy: one clear error
    res = _greysim(root, "validate", "mine/tier-first.yaml")
    assert res.exit_code == 2 and "extends" in res.output and "baseline.yaml" in res.output
    # the README's fix
    copy.write_text(text.replace("extends: baseline.yaml",
                                 "extends: ../scenarios/baseline.yaml"))
    res = _greysim(root, "validate", "mine/tier-first.yaml")
    assert res.exit_code == 0, res.output
    res = _greysim(root, "run", "mine/tier-first.yaml", "--users", "2000", "--quarters", "1",
                   "--quiet", "--no-report", "--out", "out")
    assert res.exit_code == 0, res.output
    assert (root / "out" / "metrics.parquet").exists()


def test_the_readmes_first_strategy_validates(tmp_path):
    root = _workspace(tmp_path)
    block = README.split("`mine/weekly-tier1.yaml`:", 1)[1].split("```yaml\n", 1)[1]
    (root / "mine" / "weekly-tier1.yaml").write_text(block.split("```", 1)[0])
    res = _greysim(root, "validate", "mine/weekly-tier1.yaml")
    assert res.exit_code == 0, res.output


def test_readme_tree_lists_every_module_of_the_package():
    tree = README.split("## Architecture", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    listed = set(re.findall(r"([a-z_]+\.py)", tree))
    modules = {p.name for p in (ROOT / "sim").glob("*/*.py") if p.name != "__init__.py"}
    modules |= {p.name for p in (ROOT / "sim").glob("*.py")}
    assert modules <= listed, sorted(modules - listed)
    folders = set(re.findall(r"^  ([a-z_]+)/", tree, flags=re.M))
    assert folders == {p.name for p in (ROOT / "sim").iterdir()
                       if p.is_dir() and (p / "__init__.py").exists()}
