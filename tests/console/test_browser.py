"""The console in a real browser: Debian's headless Chromium, driven by Selenium through Debian's
chromedriver, against a real server of the app on a free loopback port. A practitioner applies to
repair points (check, then submit), and their hospital approves the application. Each page is
saved as a screenshot under .ci/artifacts/screenshots/ (kept by CI as an artifact).

Selenium never downloads anything: the driver and the browser are given by path and SE_OFFLINE is
set. Without Chromium (a developer's machine) these tests skip; .ci/run installs it.
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from factories import Api, code, make_key, new_id_number
from werkzeug.serving import make_server

from points_service.clock import local_today
from points_service.persistence.engine import transaction
from points_service.persistence.models import RepairApplication

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SHOTS = Path(__file__).resolve().parents[2] / ".ci" / "artifacts" / "screenshots"
DESKTOP, PHONE = 1280, 390

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs Debian's chromium and chromium-driver "
    "(apt-get install chromium chromium-driver; .ci/run installs them)",
)


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    previous = os.environ.get("SE_OFFLINE")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not fetch a driver or a browser
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        # without these Chromium reaches for hosts of its own (updates, sync, field trials)
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--lang=zh-CN",
        f"--window-size={DESKTOP},900",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        if previous is None:
            os.environ.pop("SE_OFFLINE", None)
        else:
            os.environ["SE_OFFLINE"] = previous


@pytest.fixture(scope="module")
def server(base_app) -> Iterator[str]:
    """The app served by werkzeug on a free loopback port, in a thread, on the real engine."""
    httpd = make_server("127.0.0.1", 0, base_app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        thread.join(timeout=10)


@dataclass
class People:
    person: str
    name: str
    hospital: str
    practitioner_key: str
    hr_key: str


@pytest.fixture
def people(committed_app) -> People:
    """A person with 4 points today at their hospital, committed (the server reads its own engine);
    named as people and hospitals are, since these screenshots also illustrate the README."""
    sessions = committed_app.extensions["points_service"].sessions
    client = committed_app.test_client()
    admin = Api(client, make_key(sessions, "admin"))
    hospital, person = code("H"), code("P")
    admin.post(
        "/v1/institutions",
        {
            "code": hospital,
            "name": "石家庄市第一医院",
            "kind": "medical_institution",
            "region_code": "130102",
        },
    )
    number = new_id_number()
    admin.post(
        "/v1/practitioners", {"code": person, "name": "张伟", "id_number": number, "category": "physician"}
    )
    admin.post(
        f"/v1/practitioners/{person}/registrations",
        {"institution_code": hospital, "start_date": "2025-01-01", "id_number": number},
    )
    Api(client, make_key(sessions, "inspector")).violation(
        person,
        hospital,
        behaviour_code="B2-01",
        responsibility="general",
        decided_on=local_today().isoformat(),
    )
    return People(
        person=person,
        name="张伟",
        hospital=hospital,
        practitioner_key=make_key(sessions, "practitioner", practitioner_code=person),
        hr_key=make_key(sessions, "hr_system", institution_code=hospital),
    )


def shoot(driver, name: str, width: int = DESKTOP) -> None:
    """A screenshot of the whole page laid out at this width, saved for CI's artifacts."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.set_window_size(width, 900)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": min(height, 8000), "scale": 1},
        },
    )
    (SHOTS / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))
    driver.set_window_size(DESKTOP, 900)


def refusals(driver) -> list[str]:
    """What the browser refused to load or run (a policy violation, a failed request)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]


def sign_in(driver, server: str, key: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(server + "/console/sign-in")
    driver.find_element(By.NAME, "key").send_keys(key)
    driver.find_element(By.XPATH, "//main//button[@type='submit']").click()


def wait_for(driver, words: str) -> None:
    """Until the page shows these words. A page being replaced is waited through: reading an element
    of the page that is going away fails (stale, or chromedriver's "node does not belong to the
    document"), and the next try reads the new page."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 15, ignored_exceptions=(WebDriverException,)).until(
        lambda d: words in d.find_element("tag name", "body").text
    )


def test_a_practitioner_applies_for_a_repair_and_their_hospital_approves_it(
    browser, server, people, committed_app
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    b = browser
    b.delete_all_cookies()
    sign_in(b, server, people.practitioner_key)
    wait_for(b, people.name)
    assert b.current_url == server + "/console/me"
    body = b.find_element(By.TAG_NAME, "body").text
    assert "4 分" in body and "经办机构谈话提醒" in body and "正常" in body
    shoot(b, "01-practitioner-home")
    shoot(b, "01-practitioner-home-phone", PHONE)

    b.find_element(By.CSS_SELECTOR, "nav a[href='/console/me/repairs/new']").click()
    wait_for(b, "第一步：核对规则结果")
    Select(b.find_element(By.NAME, "institution_code")).select_by_value(people.hospital)
    Select(b.find_element(By.NAME, "activity")).select_by_value("offline_training")
    # a date input's typing order follows the browser's locale; its value is always YYYY-MM-DD
    b.execute_script(
        "arguments[0].value = arguments[1]",
        b.find_element(By.NAME, "completed_on"),
        local_today().isoformat(),
    )
    b.find_element(By.NAME, "evidence_ref").send_keys("培训证书 2026-0042")
    shoot(b, "02-repair-form")
    b.find_element(By.XPATH, "//button[contains(., '第一步')]").click()
    # the words of the answer only, not of the button that asked for it
    wait_for(b, "规则结果：可以申请：预计减去 2 分")
    shoot(b, "03-repair-check")
    shoot(b, "03-repair-check-phone", PHONE)
    b.find_element(By.XPATH, "//button[contains(., '第二步')]").click()
    wait_for(b, "已提交，等待所在机构审核")
    assert b.current_url == server + "/console/me"
    shoot(b, "04-practitioner-submitted")
    assert refusals(b) == []

    b.find_element(By.XPATH, "//header//button[contains(., '退出')]").click()
    wait_for(b, "您已退出")
    sign_in(b, server, people.hr_key)
    wait_for(b, "待本机构审核的记分修复申请")
    with transaction(committed_app.extensions["points_service"].sessions, write=False) as db:
        [repair_id] = [
            a.id
            for a in db.query(RepairApplication).filter(
                RepairApplication.evidence_ref == "培训证书 2026-0042"
            )
            if a.status == "submitted"
        ][-1:]
    row = b.find_element(By.ID, f"repair-{repair_id}")
    assert people.name in row.text and "线下培训" in row.text
    shoot(b, "05-hospital-queue")
    shoot(b, "05-hospital-queue-phone", PHONE)
    row.find_element(By.NAME, "comment").send_keys("证书已核验")
    row.find_element(By.XPATH, ".//button[@value='approve']").click()
    wait_for(b, f"修复申请 #{repair_id}：所在机构已同意，待经办机构审核")
    shoot(b, "06-hospital-approved")
    assert refusals(b) == []

    with transaction(committed_app.extensions["points_service"].sessions, write=False) as db:
        application = db.get(RepairApplication, repair_id)
        assert (application.status, application.institution_comment) == ("institution_approved", "证书已核验")


def test_an_inspector_previews_a_decision_and_the_reviewer_reads_the_years_figures(
    browser, server, people, committed_app
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    b = browser
    sessions = committed_app.extensions["points_service"].sessions
    b.delete_all_cookies()
    sign_in(b, server, make_key(sessions, "inspector"))
    wait_for(b, "录入记分决定")
    case_ref = code("HB-")
    for name, value in (
        ("case_ref", case_ref),
        ("practitioner_code", people.person),
        ("institution_code", people.hospital),
    ):
        b.find_element(By.NAME, name).send_keys(value)
    Select(b.find_element(By.NAME, "behaviour_code")).select_by_value("B1-01")
    Select(b.find_element(By.NAME, "responsibility")).select_by_value("important")
    for name in ("occurred_on", "decided_on"):
        b.execute_script(
            "arguments[0].value = arguments[1]", b.find_element(By.NAME, name), local_today().isoformat()
        )
    b.find_element(By.XPATH, "//button[contains(., '第一步')]").click()
    wait_for(b, f"预览（尚未记录）：预计：{people.person} 记 2 分，{local_today().year} 年累计 6 分")
    shoot(b, "07-inspector-preview")
    b.find_element(By.XPATH, "//button[contains(., '第二步')]").click()
    wait_for(b, f"已记录案件 {case_ref}")
    assert refusals(b) == []

    b.find_element(By.XPATH, "//header//button[contains(., '退出')]").click()
    wait_for(b, "您已退出")
    sign_in(b, server, make_key(sessions, "reviewer"))
    wait_for(b, "复核队列")
    b.find_element(By.CSS_SELECTOR, "nav a[href='/console/statistics']").click()
    wait_for(b, "年按最高档次的人数")
    chart = b.find_element(By.CSS_SELECTOR, "svg.chart")
    assert chart.size["width"] > 300 and chart.size["height"] > 100
    bars = chart.find_elements(By.CSS_SELECTOR, "rect.bar")
    assert len(bars) == 5 and max(bar.size["width"] for bar in bars) > 0
    shoot(b, "08-reviewer-statistics")
    shoot(b, "08-reviewer-statistics-phone", PHONE)
    assert refusals(b) == []
