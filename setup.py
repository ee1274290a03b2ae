"""Only what pyproject.toml cannot say: the package list.

The wheel carries the top-level ``templates/`` directory (Jinja templates and the vendored static
files) as the data-only package ``accessd.templates`` (mapped to ``templates/`` by pyproject.toml's
``package-dir``), so an installed accessd finds its templates: ``accessd.web.assets.templates_dir``.
"""

from setuptools import find_namespace_packages, setup

skip = ["*__pycache__*"]
setup(
    packages=[
        *find_namespace_packages(include=["accessd", "accessd.*"], exclude=skip),
        "accessd.templates",
        *(f"accessd.templates.{p}" for p in find_namespace_packages(where="templates", exclude=skip)),
    ]
)
