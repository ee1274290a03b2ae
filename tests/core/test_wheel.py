"""The wheel is a complete service: an installed accessd (no checkout beside it) finds its
migrations, its templates and its vendored static files.

The templates live in the top-level ``templates/`` directory; the wheel carries them as
``accessd/templates`` (setup.py, pyproject.toml's ``package-dir``) and ``accessd.web.assets``
finds them there. The wheel is built from a copy of the sources (never the checkout's stale
``build/``), unzipped, and imported by a Python started in another directory with only the unzipped
wheel on its path before the venv's site-packages (the venv supplies the dependencies; its editable
accessd comes after ``PYTHONPATH`` and the test checks it was not the one imported).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds a wheel: ~10 s

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["pyproject.toml", "setup.py", "README.md", "accessd", "templates"]

# runs in the subprocess: imports the unzipped accessd, migrates a new SQLite database, serves pages
PROBE = r"""
import json, sys
from pathlib import Path

import accessd
from accessd import create_app
from accessd.db import Database

url = "sqlite:///" + sys.argv[1]
Database(url).upgrade()
app = create_app({"database_url": url, "instance_path": sys.argv[2], "secret_key": "k" * 32})
client = app.test_client()
login = client.get("/admin/login")
css = client.get("/admin/static/vendor/pico.min.css")
print(json.dumps({
    "accessd": accessd.__file__,
    "template_folder": str(Path(app.root_path, app.template_folder)),
    "templates": sorted(app.jinja_env.list_templates()),
    "login": [login.status_code, login.get_data(as_text=True)],
    "css": [css.status_code, len(css.get_data())],
}))
app.extensions["accessd"].close()
"""


def _builds_without_isolation() -> bool:
    """True when this venv's setuptools can build a wheel by itself (offline): setuptools 70.1+
    has bdist_wheel built in, older ones need the ``wheel`` package."""
    try:
        version = tuple(int(p) for p in metadata.version("setuptools").split(".")[:2])
    except metadata.PackageNotFoundError:
        return False
    if version < (68, 0):  # pyproject.toml's build-system requires setuptools>=68
        return False
    try:
        metadata.version("wheel")
        return True
    except metadata.PackageNotFoundError:
        return version >= (70, 1)


@pytest.fixture(scope="module")
def unzipped_wheel(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    # without isolation pip builds with this venv's setuptools, offline; with isolation it fetches
    # setuptools>=68 from the package index into a throwaway environment
    isolation = ["--no-build-isolation"] if _builds_without_isolation() else []
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q",
         *isolation, str(src), "-w", str(tmp / "dist")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp / "dist").glob("accessd-*.whl")
    target = tmp / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(target)
    return target


def test_the_wheel_carries_the_templates_and_vendored_files(unzipped_wheel):
    templates = unzipped_wheel / "accessd" / "templates"
    for name in ("pico.min.css", "pico.LICENSE.md", "htmx.min.js", "htmx.LICENSE", "README.md"):
        vendored = Path("static/vendor", name)
        assert (templates / vendored).read_bytes() == (ROOT / "templates" / vendored).read_bytes()
    # every template and static file of the checkout, nothing else
    checkout = ROOT / "templates"
    shipped = {p.relative_to(templates) for p in templates.rglob("*") if p.is_file()}
    assert shipped == {p.relative_to(checkout) for p in checkout.rglob("*") if p.is_file()}
    assert list((unzipped_wheel / "accessd/migrations/versions").glob("0001_*.py"))
    # the browser tests' axe-core is not part of the package
    assert not list(unzipped_wheel.rglob("axe.min.js"))


def test_an_installed_accessd_serves_its_pages_and_static_files(unzipped_wheel, tmp_path):
    elsewhere = tmp_path / "elsewhere"  # no templates/ and no accessd/ here
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCESSD_")}
    env["PYTHONPATH"] = str(unzipped_wheel)
    run = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "accessd.sqlite3"), str(tmp_path / "instance")],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])

    assert Path(seen["accessd"]).is_relative_to(unzipped_wheel)
    assert Path(seen["template_folder"]).resolve() == (unzipped_wheel / "accessd" / "templates").resolve()
    assert "admin/base.html" in seen["templates"]
    assert seen["css"] == [200, (ROOT / "templates/static/vendor/pico.min.css").stat().st_size]
    status, body = seen["login"]
    assert status == 200
    assert 'name="password"' in body and 'name="username"' in body
