"""The README's picture of the playground: `make screenshot` writes docs/playground.png.

The same headless Chromium and stand-in upstream as the browser suite, one Korean turn.
"""

from __future__ import annotations

import sys
from pathlib import Path

from browser.conftest import browser
from browser.test_pages import by_testid, open_playground, say
from helpers.fake_openai import FakeOpenAI
from helpers.live_server import LiveServer
from helpers.tenants import tenant_app

OUT = Path(__file__).resolve().parents[2] / "docs" / "playground.png"


def main() -> int:
    with FakeOpenAI() as fake:
        app, _ = tenant_app("sqlite", None, fake, openai_models="gpt-4o,gpt-4.1-mini")
        with LiveServer(app) as server:
            driver_factory = browser.__wrapped__()  # the fixture's generator, outside pytest
            driver = next(driver_factory)
            try:
                open_playground(driver, server)
                by_testid(driver, "session")[0].send_keys("demo-1")
                say(driver, "안녕하세요! 서울에서 가 볼 만한 곳을 알려 주세요.")
                OUT.parent.mkdir(exist_ok=True)
                driver.save_screenshot(str(OUT))
            finally:
                driver_factory.close()
    print(OUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
