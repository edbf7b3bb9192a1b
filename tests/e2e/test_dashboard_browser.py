"""The dashboard in a real browser (Debian's chromium through its chromedriver, driven by Selenium) against
the real server and a real running search: pausing one trial leaves the other running, clicking Pause
pauses the session and the page shows the resume command, no token gets 403. Screenshots are saved in
the test's tmp folder (``dashboard_*.png``)."""

import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from e2e_support import EXIT_PAUSED, ScriptRun, start_search, trials, wait_until, write_config
from lightning_bohb.session.state import SUMMARY_FILE

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
        browser.save_screenshot(str(tmp_path / "dashboard_sessions.png"))
        click(browser, "#lb-sessions a")

        held, other = sorted(trials(session))
        wait_until(lambda: status_cell(browser, held) == "RUNNING" and status_cell(browser, other) == "RUNNING", 30, "the trials table")
        wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, "#lb-curves .scatterlayer .trace"), 30, "the learning curves")
        browser.save_screenshot(str(tmp_path / "dashboard_running.png"))

        click(browser, f"#lb-trial-{held} button.lb-trial-pause")
        wait_until(lambda: status_cell(browser, held) == "PAUSED (on request)", 120, f"trial {held} PAUSED on the page")
        assert status_cell(browser, other) == "RUNNING"  # the other trial trains on
        assert trials(session)[other]["status"] == "RUNNING" and search.proc.poll() is None
        wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, f"#lb-trial-{held} button.lb-trial-continue"), 30, "continue")
        browser.save_screenshot(str(tmp_path / "dashboard_trial_paused.png"))

        click(browser, "#lb-pause")
        command = wait_until(lambda: text_of(browser, "#lb-resume-command"), 180, "the resume command on the page")
        assert command.endswith(f"--resume-session {session}") and "OPTIMIZATION PAUSED" in search.output
        assert search.wait(timeout=120) == EXIT_PAUSED
        wait_until(lambda: text_of(browser, "#lb-title").endswith("PAUSED"), 30, "the session PAUSED in the title")
        wait_until(lambda: status_cell(browser, held) == "PAUSED (on request)" and status_cell(browser, other) == "PAUSED", 30,
                   "both trials PAUSED on the page")
        browser.save_screenshot(str(tmp_path / "dashboard_session_paused.png"))
    finally:
        for run in (search, dashboard):
            if run.proc.poll() is None:
                run.proc.terminate()
                try:
                    run.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    run.proc.kill()
    for name in ("sessions", "running", "trial_paused", "session_paused"):
        assert (tmp_path / f"dashboard_{name}.png").stat().st_size > 10_000, name
