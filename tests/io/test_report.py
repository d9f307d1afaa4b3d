"""The report: one self-contained HTML page per run or comparison folder, checked in a browser."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from test_charts import credit_monthly, vintages
from typer.testing import CliRunner

from sim.cli.app import app
from sim.io.report import write_report

runner = CliRunner()
SMALL = ["--users", "20000", "--quarters", "4", "--quiet"]
CREDIT_CHARTS = ("Vintage curves", "Risk against reach", "Outstanding balance and capital limit",
                 "Net income")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, baseline_path) -> Path:
    """A run folder written by ``greysim run`` (report included by default)."""
    out = tmp_path_factory.mktemp("report") / "run"
    res = runner.invoke(app, ["run", str(baseline_path), *SMALL, "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def comparison_dir(tmp_path_factory, run_dir) -> Path:
    """A comparison folder: tables with strategy and replication columns, and a verdict."""
    out = tmp_path_factory.mktemp("comparison")
    monthly = credit_monthly(("tier_first", "version_first", "holiday_push"), reps=3)
    monthly.to_parquet(out / "metrics.parquet")
    vintages().to_parquet(out / "vintages.parquet")
    shutil.copy(run_dir / "manifest.json", out / "manifest.json")
    verdict = "version_first reaches 30% coverage soonest within the 2% default budget"
    (out / "summary.json").write_text(json.dumps({"verdict": verdict, "target": 0.3}))
    return out


def images(page: str) -> list[str]:
    return re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,', page)


def test_run_writes_charts_and_a_self_contained_report(run_dir):
    page = (run_dir / "report.html").read_text()
    drawn = images(page)
    assert drawn == ["Coverage growth", "Funnel per quarter", "Vintage curves",
                     "Access rate: archetype x region tier",
                     "Access rate: client version x device grade", "Re-evaluation churn",
                     "Outstanding balance and capital limit", "Net income"]
    # one run has no strategies to set against each other: a note, not an error
    assert "<li><b>Risk against reach</b>:" in page
    assert "could not be drawn" not in page
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing from the network
    assert "Scenario as resolved" in page and "spring_festival_2025" in page
    charts = {p.name for p in (run_dir / "charts").iterdir()}
    assert charts == {f"{stem}.{ext}" for stem in ("coverage", "funnel", "churn",
                                                  "access_archetype_region",
                                                  "access_version_device", "vintages",
                                                  "capital", "net_income")
                      for ext in ("png", "svg")}
    assert (run_dir / "charts" / "coverage.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".") and p.name != ".greysim"]


def test_comparison_report_draws_every_chart_and_the_verdict(comparison_dir):
    page = write_report(comparison_dir).read_text()
    assert "<b>Verdict:</b> version_first reaches 30% coverage soonest" in page
    drawn = images(page)
    for title in ("Coverage growth", "Vintage curves", "Risk against reach",
                  "Outstanding balance and capital limit", "Net income"):
        assert title in drawn
    assert "no segment table" in page  # the heat maps say why they are missing


def test_report_command(run_dir, tmp_path):
    (run_dir / "report.html").unlink()
    res = runner.invoke(app, ["report", str(run_dir)])
    assert res.exit_code == 0, res.output
    assert (run_dir / "report.html").exists()
    bad = runner.invoke(app, ["report", str(tmp_path)])
    assert bad.exit_code == 2 and "metrics.parquet" in bad.output
    assert "Traceback" not in bad.output


def test_no_report_skips_charts(tmp_path, baseline_path):
    out = tmp_path / "bare"
    res = runner.invoke(app, ["run", str(baseline_path), *SMALL, "--no-report", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert not (out / "report.html").exists() and not (out / "charts").exists()


# ----------------------------------------------------------------------- in a real browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def open_in_chromium(report: Path, shot: Path, profile: Path) -> dict:
    """Load ``report`` from disk; return console errors, outside requests and image sizes."""
    from playwright.sync_api import sync_playwright

    errors, outside = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=ARGS, headless=True,
            viewport={"width": 1280, "height": 900})
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: outside.append(r.url)
                    if not r.url.startswith(("file:", "data:")) else None)
            page.goto(report.as_uri(), wait_until="load")
            sizes = page.evaluate("""() => Array.from(document.images).map(
                i => [i.alt, i.complete, i.naturalWidth])""")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    return {"errors": errors, "outside": outside, "images": sizes}


@pytest.mark.parametrize("folder", ["run_dir", "comparison_dir"])
def test_report_opens_in_chromium(request, folder, tmp_path):
    if not shutil.which("chromium") and not os.environ.get("CI"):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; "
                    ".ci/run installs it)")
    where = request.getfixturevalue(folder)
    report = where / "report.html"
    if not report.exists():
        write_report(where)
    shot = tmp_path / f"{folder}.png"
    seen = open_in_chromium(report, shot, tmp_path / "profile")
    print(f"screenshot: {shot}")
    assert seen["errors"] == [] and seen["outside"] == []
    assert len(seen["images"]) == len(images(report.read_text())) >= 5
    for alt, complete, width in seen["images"]:
        assert complete and width > 0, alt
    assert shot.stat().st_size > 10_000
