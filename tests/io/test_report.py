"""The report: one self-contained HTML page per run or comparison folder, checked in a browser."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from chart_data import credit_monthly, vintages
from typer.testing import CliRunner

from sim.cli.app import app
from sim.io.report import write_report

runner = CliRunner()
SMALL = ["--users", "20000", "--quarters", "4", "--quiet"]
RUN_CHARTS = ["Coverage growth", "Access rate: archetype x region tier",
              "Entry visibility by client version", "Funnel per quarter", "Re-evaluation churn",
              "Default rate by batch", "Vintage curves by phase", "Net income",
              "Outstanding balance and capital limit"]


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


@pytest.fixture(scope="module")
def real_comparison_dir(tmp_path_factory, baseline_path) -> Path:
    """A folder written by ``greysim compare`` (two strategies, tiny)."""
    out = tmp_path_factory.mktemp("real") / "cmp"
    tier, version = (baseline_path.parent / f"{n}.yaml" for n in ("tier-first", "version-first"))
    res = runner.invoke(app, ["compare", str(tier), str(version), "--reps", "2",
                              "--users", "3000", "--quarters", "4", "--workers", "1",
                              "--max-default-rate", "0.03", "--quiet", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


def images(page: str) -> list[str]:
    return re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,', page)


def test_run_writes_charts_and_a_self_contained_report(run_dir):
    page = (run_dir / "report.html").read_text()
    assert images(page) == RUN_CHARTS
    # one run has no strategies to set against each other: a note, not an error
    assert "<li><b>Speed against risk</b>:" in page
    assert "could not be drawn" not in page
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing from the network
    assert "Scenario as resolved" in page and "spring_festival_2025" in page
    charts = {p.name for p in (run_dir / "charts").iterdir()}
    assert charts == {f"{stem}.png" for stem in (
        "coverage", "access_archetype_region", "visibility_version", "funnel", "churn",
        "batch_default", "vintages", "net_income", "capital")}  # SVG only on request
    assert (run_dir / "charts" / "coverage.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".") and p.name != ".greysim"]


def test_run_report_answers_first_with_risk_and_money(run_dir):
    page = (run_dir / "report.html").read_text()
    summary = json.loads((run_dir / "summary.json").read_text())
    answer = page.index('class="answer"')
    assert answer < page.index("<h2>")  # the answer comes before any section
    credit = summary["credit"]
    for card in (f"{100 * credit['default_rate_12m']:.2f}%", "12-month default rate",
                 "annualised loss rate", f"{credit['net_income'] / 1e9:,.1f} bn CNY",
                 "outstanding at the horizon"):
        assert card in page, card
    assert " M<" not in page and " M " not in page  # no bare M for millions
    assert "How fast does coverage grow?" in page and "Who gets access?" in page
    assert "12-month default rate (% of borrowers)" in page  # units in the headers


def test_svg_on_request(run_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    write_report(copy, svg_files=True)
    assert (copy / "charts" / "coverage.svg").exists()


def test_comparison_report_draws_every_chart_and_the_verdict(comparison_dir):
    page = write_report(comparison_dir).read_text()
    assert "<b>Verdict:</b> version_first reaches 30% coverage soonest" in page
    drawn = images(page)
    for title in ("Coverage growth", "Vintage curves by phase", "Speed against risk",
                  "Default rate by batch", "Outstanding balance and capital limit",
                  "Net income"):
        assert title in drawn
    assert "no segment table" in page  # the heat maps say why they are missing


def test_real_comparison_report(real_comparison_dir):
    page = (real_comparison_dir / "report.html").read_text()
    assert page.index('class="answer"') < page.index("<h2>")
    assert "Access rate: archetype x region tier" in images(page)  # per strategy
    # differences in percentage points with their interval
    assert re.search(r"[+-]\d+\.\d+ pp <span[^>]*>\[[+-]?\d", page)
    assert not re.search(r"(\d\.\d+) \[\1, \1\]", page)  # no "5.000 [5.000, 5.000]"
    for strategy in ("tier-first", "version-first"):
        assert f"{strategy}: the scenario as resolved" in page
    assert "key differences to" in page and "rollout.phases" in page


def test_structured_verdict_and_ab_section(run_dir, tmp_path):
    folder = tmp_path / "ab"
    shutil.copytree(run_dir, folder)
    summary = json.loads((folder / "summary.json").read_text())
    summary["verdict"] = {"text": "tier-first reaches 30% first within budget",
                          "winner": "tier-first", "runner_up": "adaptive",
                          "reasons": ["2 quarters sooner", "default rate 0.1 pp lower"]}
    summary["ab"] = {"control": "control", "srm": {"chi2": 0.2, "p_value": 0.65,
                                                   "alpha": 0.001, "mismatch": False},
                     "arms": {"control": {"users": 100, "invited_share": 0.4,
                                          "ever_invited": 4e6, "default_rate": 0.01},
                              "treatment": {"users": 100, "invited_share": 0.38,
                                            "ever_invited": 3.8e6, "default_rate": 0.012,
                                            "vs_control": {"default_rate": {
                                                "diff": 0.002, "ci_low": -0.001,
                                                "ci_high": 0.005}}}}}
    (folder / "summary.json").write_text(json.dumps(summary))
    page = write_report(folder).read_text()
    assert "run <b>tier-first</b>; runner-up adaptive" in page
    assert "<li>2 quarters sooner</li>" in page
    assert "<h2>A/B arms</h2>" in page and "+0.20 pp" in page and "no mismatch" in page


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
            viewport={"width": 1200, "height": 900})
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: outside.append(r.url)
                    if not r.url.startswith(("file:", "data:")) else None)
            page.goto(report.as_uri(), wait_until="load")
            sizes = page.evaluate("""() => Array.from(document.images).map(
                i => [i.alt, i.complete, i.naturalWidth])""")
            fits = page.evaluate(
                "() => document.documentElement.scrollWidth <= window.innerWidth")
            first = page.evaluate("""() => {
                const e = document.querySelector('.answer') || document.querySelector('.cards');
                return e !== null && e.getBoundingClientRect().bottom <= window.innerHeight; }""")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    return {"errors": errors, "outside": outside, "images": sizes, "fits": fits,
            "answer_first": first}


@pytest.mark.parametrize("folder", ["run_dir", "comparison_dir", "real_comparison_dir"])
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
    assert seen["fits"], "the page scrolls sideways at 1200 px"
    assert seen["answer_first"], "the verdict or headline is not in the first screen"
    assert len(seen["images"]) == len(images(report.read_text())) >= 5
    for alt, complete, width in seen["images"]:
        assert complete and width > 0, alt
    assert shot.stat().st_size > 10_000
