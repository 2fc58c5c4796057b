"""The hook in conftest.py that makes a skipped test a failure in CI ($CI set, not "false"),
run on a small generated test file by a pytest of its own, with conftest.py loaded as a plugin:
a skip in the test, a skipif mark, a skip in a fixture and a skipped module each fail with
their reason under CI=true, and stay skips without $CI or with CI=false; an xfail stays one."""

import os
import subprocess
import sys

import pytest

E2E = os.path.dirname(os.path.abspath(__file__))

TESTS = '''
import pytest

@pytest.fixture
def needs_frob():
    pytest.skip("no frobnicator in the fixture")

def test_passes():
    pass

def test_skips_in_the_test():
    pytest.skip("no frobnicator in the test")

@pytest.mark.skipif(True, reason="no frobnicator by mark")
def test_skipped_by_mark():
    pass

def test_skipped_by_fixture(needs_frob):
    pass

@pytest.mark.xfail(reason="a known bug", strict=True)
def test_expected_to_fail():
    assert False
'''

MODULE_SKIP = '''
import pytest

pytest.skip("no frobnicator for the module", allow_module_level=True)

def test_never_runs():
    pass
'''

REASONS = ["no frobnicator in the test", "no frobnicator by mark",
           "no frobnicator in the fixture"]


def pytest_of_its_own(tmp_path, source, ci):
    path = tmp_path / "test_generated.py"
    path.write_text(source)
    env = dict(os.environ, PYTHONPATH=E2E)
    env.pop("CI", None)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "conftest", "-p",
                           "no:cacheprovider", "-rs", "-q", str(path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("ci", ["true", "1", "yes"])
def test_in_ci_each_skip_fails_with_its_reason(tmp_path, ci):
    p = pytest_of_its_own(tmp_path, TESTS, ci)
    assert p.returncode == 1, p.stdout + p.stderr
    for reason in REASONS:
        assert f"in CI (CI={ci}) a skip is a failure: Skipped: {reason}" in p.stdout, p.stdout
    # test_skipped_by_mark and test_skipped_by_fixture skip at setup: pytest counts them as
    # errors; test_skips_in_the_test skips in its call: a failure.
    assert "1 failed, 1 passed, 1 xfailed, 2 errors" in p.stdout, p.stdout


@pytest.mark.parametrize("ci", [None, "", "false", "0"])
def test_outside_ci_a_skip_stays_a_skip(tmp_path, ci):
    p = pytest_of_its_own(tmp_path, TESTS, ci)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "1 passed, 3 skipped, 1 xfailed" in p.stdout, p.stdout
    for reason in REASONS:
        assert reason in p.stdout


def test_in_ci_a_skipped_module_fails(tmp_path):
    p = pytest_of_its_own(tmp_path, MODULE_SKIP, "true")
    assert p.returncode == pytest.ExitCode.INTERRUPTED, p.stdout + p.stderr
    assert "a skip is a failure: Skipped: no frobnicator for the module" in p.stdout, p.stdout
    assert "1 error" in p.stdout, p.stdout
    # Outside CI: one skip and nothing else to run, which pytest says with exit status 5.
    p = pytest_of_its_own(tmp_path, MODULE_SKIP, None)
    assert p.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, p.stdout + p.stderr
    assert "1 skipped" in p.stdout, p.stdout
