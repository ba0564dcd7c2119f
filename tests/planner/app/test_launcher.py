import threading
import urllib.error
import urllib.request

import pytest

from planner.app.launcher import Launcher


class _Running:
    """Stands for a live session process."""

    returncode = None

    def poll(self):
        return None

    def terminate(self):
        self.returncode = 0

    def wait(self, timeout=None):
        return 0


@pytest.fixture
def launcher(tmp_path):
    launcher = Launcher(db=tmp_path / "p.sqlite", max_sessions=1, banner="CLASSROOM MODE: test")
    threading.Thread(target=launcher.httpd.serve_forever, daemon=True).start()
    yield launcher
    launcher.httpd.shutdown()
    launcher.stop()


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_start_page_names_the_disclaimer_and_the_banner(launcher):
    status, page = _get(launcher.url)
    assert status == 200 and "not for clinical use" in page and "CLASSROOM MODE" in page


def test_sessions_above_the_cap_are_refused(launcher):
    launcher.sessions.append((_Running(), 1, "ana"))
    status, page = _get(launcher.url + "start?resident=ben")
    assert status == 503 and "all 1 sessions are in use" in page


@pytest.mark.parametrize("name", ["", "<script>", "x" * 41])
def test_bad_names_are_refused(launcher, name):
    status, page = _get(launcher.url + "start?resident=" + urllib.request.quote(name))
    assert status == 400 and "name: 1-40" in page and "<script>" not in page
