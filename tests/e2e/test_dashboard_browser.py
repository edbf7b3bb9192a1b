"""The dashboard in a real browser (Debian's chromium through its chromedriver, driven by Selenium) against
the real server and a real running search: pausing one trial leaves the other running, clicking Pause
pauses the session and the page shows the resume command, no token gets 403, the start URL's token
becomes a cookie and leaves the address bar. The charts render with data (learning curves, epochs per
trial, parallel coordinates), the best trial is marked, no chart title lies under Plotly's toolbar, and
the page writes numbers as Python does. A ``plot`` report of a larger search shows the hyperparameter
importance too. Screenshots are saved in the test's tmp folder (``dashboard_*.png``, ``report_*.png``)."""

import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from e2e_support import EXIT_PAUSED, ScriptRun, start_search, trials, wait_until, write_config
from lightning_bohb.cli.format import number
from lightning_bohb.utils.layout import SUMMARY_FILE

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture
def browser(tmp_path):
    if not (CHROMIUM and CHROMEDRIVER):
        message = "Debian's chromium and chromium-driver are needed: apt-get install -y chromium chromium-driver"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (.ci/run installs them as root)")
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1100"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)  # the system driver: nothing downloaded
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def start_dashboard(experiments, cwd):
    run = ScriptRun([sys.executable, "-m", "lightning_bohb", "dashboard", str(experiments), "--port", "0"], cwd=cwd)
    url = wait_until(lambda: re.search(r"http://127\.0\.0\.1:\d+/\?token=\S+", run.output), 60, "the dashboard URL").group(0)
    return run, url


def status_cell(driver, trial_id):
    """The trial's status on the page ("" while the table is being redrawn: it is rebuilt every poll)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        cells = driver.find_elements(By.CSS_SELECTOR, f"#lb-trial-{trial_id} td.lb-status")
        return cells[0].text if cells else ""
    except StaleElementReferenceException:
        return ""


def text_of(driver, selector):
    """The text of the element ``selector`` finds ("" if it is not there or is being redrawn)."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By

    try:
        return driver.find_element(By.CSS_SELECTOR, selector).text
    except WebDriverException:
        return ""


def click(driver, selector):
    """Click the element ``selector`` finds, again if the page redrew it between finding and clicking."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By

    def clicked():
        try:
            driver.find_element(By.CSS_SELECTOR, selector).click()
            return True
        except (StaleElementReferenceException, WebDriverException):
            return False

    wait_until(clicked, 30, f"a click on {selector}")


def charts_render_with_data(driver, shot):
    """The charts have data, the best trial is marked, no title lies under a toolbar; then a screenshot."""
    from selenium.webdriver.common.by import By

    for selector in ("#lb-curves .scatterlayer .trace", "#lb-rungs .barlayer .trace", "#lb-parcoords .scatterlayer .trace"):
        wait_until(lambda css=selector: driver.find_elements(By.CSS_SELECTOR, css), 60, selector)
    lines = driver.execute_script("return document.querySelector('#lb-parcoords .lb-plot').data.map(function (t) { return t.y.length; })")
    assert len(lines) >= 2 and min(lines) >= 3  # a line per trial, through 2 hyperparameters or more and the metric
    best = wait_until(lambda: text_of(driver, "#lb-trials tr.lb-best td"), 30, "the best trial's row")
    assert best.startswith("\u2605 ")
    overlaps = driver.execute_script("""  // Plotly's toolbar over neither the chart's title nor its plotting area
        function meet(a, b) { return a.width && b.width && a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom; }
        var hits = [];
        document.querySelectorAll("figure.lb-chart").forEach(function (fig) {
          var others = [fig.querySelector("figcaption")].concat(Array.from(fig.querySelectorAll(".draglayer .nsewdrag")));
          fig.querySelectorAll(".modebar").forEach(function (bar) {
            others.forEach(function (el) { if (meet(bar.getBoundingClientRect(), el.getBoundingClientRect())) { hits.push(fig.id); } });
          });
        });
        return hits;""")
    assert overlaps == []
    driver.execute_script("document.getElementById('lb-parcoords').scrollIntoView()")
    driver.save_screenshot(shot)


def test_dashboard_pauses_a_trial_then_the_session_in_a_browser(tmp_path, browser):
    from selenium.webdriver.common.by import By

    record_dir = tmp_path / "records"
    record_dir.mkdir()
    config = write_config(tmp_path, record_dir, min_epoch_seconds=2.0)
    experiments = tmp_path / "experiments"
    experiments.mkdir()
    dashboard, url = start_dashboard(experiments, tmp_path)
    search = start_search(tmp_path, ["--base-config", str(config), "--max-epochs", "8"])
    try:
        base = url.split("?")[0]
        for path in ("", "api/sessions", "static/plotly.min.js"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(base + path, timeout=20)
            assert refused.value.code == 403
        browser.get(base)
        assert "403" in browser.find_element(By.TAG_NAME, "body").text

        session = wait_until(lambda: next(experiments.glob(f"*/session_*/{SUMMARY_FILE}"), None), 120, "the session folder").parent
        wait_until(lambda: len([t for t in trials(session).values() if t["status"] == "RUNNING" and t["epochs"] >= 1]) == 2, 240,
                   "both trials running past their first epoch")
        browser.get(url)
        wait_until(lambda: text_of(browser, "#lb-sessions a").endswith(session.name), 30, "the session in the list")
        assert "token" not in browser.current_url  # exchanged for a cookie: not in the address bar or the history
        assert "token" not in browser.find_element(By.CSS_SELECTOR, "#lb-sessions a").get_attribute("href")
        browser.save_screenshot(str(tmp_path / "dashboard_sessions.png"))
        click(browser, "#lb-sessions a")

        held, other = sorted(trials(session))
        wait_until(lambda: status_cell(browser, held) == "running" and status_cell(browser, other) == "running", 30, "the trials table")
        wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, "#lb-curves .scatterlayer .trace"), 30, "the learning curves")
        values = [1.099e-4, 0.0001099, 1234.5, 12345.0, -0.00012345, 0.1, 1 / 3, 32, 100000, 0.001]
        assert browser.execute_script("return arguments[0].map(LBCharts.fmt)", values) == [number(v) for v in values]
        browser.save_screenshot(str(tmp_path / "dashboard_running.png"))
        charts_render_with_data(browser, str(tmp_path / "dashboard_charts.png"))
        browser.execute_script("window.scrollTo(0, 0)")

        click(browser, f"#lb-trial-{held} button.lb-trial-pause")
        wait_until(lambda: status_cell(browser, held) == "paused on request", 120, f"trial {held} paused on the page")
        assert status_cell(browser, other) == "running"  # the other trial trains on
        assert trials(session)[other]["status"] == "RUNNING" and search.proc.poll() is None
        wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, f"#lb-trial-{held} button.lb-trial-continue"), 30, "continue")
        browser.save_screenshot(str(tmp_path / "dashboard_trial_paused.png"))

        click(browser, "#lb-pause")
        command = wait_until(lambda: text_of(browser, "#lb-resume-command"), 180, "the resume command on the page")
        # Built from the folder (`lightning-bohb resume` resumes a script's session too), never read from the summary.
        assert command.endswith(f" resume {session}") and "OPTIMIZATION PAUSED" in search.output
        assert search.wait(timeout=120) == EXIT_PAUSED
        wait_until(lambda: text_of(browser, "#lb-title").endswith("PAUSED"), 30, "the session PAUSED in the title")
        wait_until(lambda: status_cell(browser, held) == "paused on request" and status_cell(browser, other) == "paused", 30,
                   "both trials paused on the page")
        browser.save_screenshot(str(tmp_path / "dashboard_session_paused.png"))
    finally:
        for run in (search, dashboard):
            if run.proc.poll() is None:
                run.proc.terminate()
                try:
                    run.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    run.proc.kill()
    for name in ("sessions", "running", "charts", "trial_paused", "session_paused"):
        assert (tmp_path / f"dashboard_{name}.png").stat().st_size > 10_000, name


def test_a_report_shows_the_importance_and_parallel_coordinates_in_a_browser(tmp_path, browser):
    """`lightning-bohb plot` of a finished search of 12 trials (session files only, no Ray), opened from disk."""
    from selenium.webdriver.common.by import By

    session = finished_session(tmp_path, 12)
    report = tmp_path / "report.html"
    done = subprocess.run([sys.executable, "-m", "lightning_bohb", "plot", str(session), "-o", str(report)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    browser.get(report.as_uri())
    charts_render_with_data(browser, str(tmp_path / "report_charts.png"))
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, "#lb-importance .barlayer .point"), 60, "the importance bars")
    bars = browser.execute_script("var d = document.querySelector('#lb-importance .lb-plot').data[0]; return [d.y, d.x];")
    assert bars[0][-1] == "lr" and bars[1][-1] > 0.5  # the largest bar on top: val_loss depends on lr only
    assert text_of(browser, "#lb-best-searched").splitlines()[1].startswith("lr: ")
    browser.execute_script("document.getElementById('lb-importance').scrollIntoView()")
    browser.save_screenshot(str(tmp_path / "report_importance.png"))
    assert (tmp_path / "report_importance.png").stat().st_size > 10_000


def finished_session(root, count):
    """A finished ASHA search's files: ``count`` trials whose val_loss depends on lr only."""
    import json
    import math
    import random

    import yaml

    session = root / "exp" / "session_20260101_000000_abcdef"
    rng = random.Random(0)
    rows = []
    for index in range(count):
        trial_id, lr, hidden = f"t_{index:05d}", 10 ** rng.uniform(-4, -1), rng.choice([16, 32, 64])
        epochs = 4 if index % 3 == 0 else 1
        folder = session / "tune" / f"train_{trial_id}"
        folder.mkdir(parents=True)
        losses = [abs(math.log10(lr) + 2.5) + 1.0 / (epoch + 1) for epoch in range(epochs)]
        with open(folder / "result.json", "w") as handle:
            for epoch, loss in enumerate(losses):
                handle.write(json.dumps({"val_loss": loss, "epoch": epoch, "training_iteration": epoch + 1, "trial_id": trial_id,
                                         "time_total_s": 2.0 * (epoch + 1), "config": {"lr": lr, "hidden_size": hidden}}) + "\n")
        rows.append({"id": trial_id, "status": "TERMINATED", "config": {"lr": lr, "hidden_size": hidden}, "epochs": epochs,
                     "last": losses[-1], "best": min(losses), "time_s": 2.0 * epochs})
    summary = {"session_id": "20260101_000000_abcdef", "experiment_name": "exp", "status": "COMPLETED", "num_samples": count,
               "max_epochs": 4, "strategy": {"name": "asha", "grace_period": 1, "reduction_factor": 3, "max_t": None},
               "search_space": {"lr": "loguniform(0.0001, 0.1)", "hidden_size": "choice([16, 32, 64])"},
               "metric": {"metric": "val_loss", "mode": "min"}, "trials": rows}
    (session / SUMMARY_FILE).write_text(yaml.safe_dump(summary, sort_keys=False))
    return session
