"""The playground page in a real browser: headless Chromium (Debian's chromium + chromium-driver, which
.ci/run installs) driven by Selenium types a prompt, presses Generate, and reads the streamed answer,
which must be the API's answer for the same options; the second tab ranks candidates with /v1/score."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from test_serve_helpers import live_server, save_tiny_checkpoint

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (a dev dependency) is not installed")

from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.select import Select  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
# The network is closed here: without these, Chromium stalls on its background services.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None or DRIVER is None,
        reason="headless Chromium needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
    ),
]


def chromium(profile: Path) -> webdriver.Chrome:
    options = Options()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(DRIVER), options=options)


def take_screenshot(driver: webdriver.Chrome, path: Path) -> None:
    """The whole page (docs/serve-playground.png is made this way, on the quickstart model)."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    metrics = {"width": 1280, "height": max(700, height), "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    driver.save_screenshot(str(path))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory = save_tiny_checkpoint(tmp_path_factory.mktemp("serve-browser") / "t5", "encoder-decoder")
    with live_server(directory) as running:
        yield running


@pytest.fixture
def browser(tmp_path):
    driver = chromium(tmp_path / "profile")
    try:
        yield driver
    finally:
        driver.quit()


def test_typing_a_prompt_streams_the_answer_into_the_page(server, browser, tmp_path):
    browser.get(f"{server.url}/")
    wait = WebDriverWait(browser, 30)
    wait.until(lambda d: d.find_element(By.ID, "status").text == "ready")
    Select(browser.find_element(By.ID, "task")).select_by_value("classify")
    text = browser.find_element(By.ID, "text")
    text.clear()
    text.send_keys("What a joy it was!")
    prompt = browser.find_element(By.ID, "prompt-preview").text
    assert prompt == "classify sentiment: What a joy it was!"
    browser.find_element(By.ID, "generate").click()
    output = browser.find_element(By.ID, "output")
    wait.until(lambda d: output.get_attribute("data-done") == "1")
    expected = httpx.post(
        f"{server.url}/v1/completions",
        json={"prompt": prompt, "max_tokens": 32, "temperature": 0},
        timeout=60,
    ).json()["choices"][0]["text"]
    assert output.text.strip() == expected.strip() and expected.strip()
    assert browser.find_element(By.ID, "stat-tokens").text not in ("–", "0")
    assert browser.find_element(By.ID, "stat-finish").text in ("stop", "length")
    assert "ms" in browser.find_element(By.ID, "stat-ttft").text
    take_screenshot(browser, tmp_path / "playground.png")
    assert (tmp_path / "playground.png").stat().st_size > 10_000


def test_the_second_tab_ranks_candidates(server, browser):
    browser.get(f"{server.url}/")
    wait = WebDriverWait(browser, 30)
    wait.until(lambda d: d.find_element(By.ID, "status").text == "ready")
    browser.find_element(By.ID, "tab-score").click()
    browser.find_element(By.ID, "rank").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#ranking tbody tr"))
    best = browser.find_element(By.CSS_SELECTOR, "#ranking tr.best td:nth-child(2)").text
    prompt = browser.find_element(By.ID, "score-prompt").get_attribute("value")
    api = httpx.post(
        f"{server.url}/v1/score", json={"prompt": prompt, "candidates": ["positive", "negative"]}, timeout=60
    ).json()
    assert best == api["data"][0]["best"]
