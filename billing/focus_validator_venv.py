"""focus-validator's own environment: a Python 3.12 venv with the validator and everything it
resolved pinned, built once and reused (the validator pins numpy<2 and pandas<3, so it cannot
live in the project's environment; see ``billing.focus_validator``)."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

FOCUS_VALIDATOR_VERSION = "2.2.1"

# The whole resolved environment, pinned: the validator's verdicts (which the tests assert)
# depend on duckdb/polars/pandas behaviour as much as on its own code. pyarrow<21 is required
# by focus-validator 2.x; the rest is what pip resolved for 2.2.1 on Python 3.12.
PINNED_REQUIREMENTS: tuple[str, ...] = (
    f"focus-validator=={FOCUS_VALIDATOR_VERSION}",
    "pyarrow==20.0.0",
    "duckdb==1.5.6",
    "polars==1.44.2",
    "polars-runtime-32==1.44.2",
    "pandas==2.3.3",
    "numpy==1.26.4",
    "pandera==0.26.1",
    "pandasql==0.7.3",
    "sqlglot==27.29.0",
    "SQLAlchemy==2.1.9",
    "pydantic==2.14.4",
    "pydantic_core==2.50.5",
    "multimethod==2.0.2",
    "PyYAML==6.0.4",
    "jsonschema==4.26.0",
    "graphviz==0.21",
    "ddt==1.7.2",
    "tabulate==0.10.0",
    "typeguard==4.6.1",
    "pytz==2025.2",
)

_MARKER = "commitplan-focus-validator.json"
_LOGGING_CONFIG = "commitplan-logging.yaml"
_LOGGING_YAML = """\
version: 1
disable_existing_loggers: false
handlers:
  stderr:
    class: logging.StreamHandler
    stream: ext://sys.stderr
    level: WARNING
root:
  level: WARNING
  handlers: [stderr]
"""


class FocusValidatorError(RuntimeError):
    """The validator could not be installed or crashed (not: the data failed checks)."""



def default_venv_path() -> Path:
    env = os.environ.get("COMMITPLAN_FOCUS_VALIDATOR_VENV")
    return Path(env) if env else Path.home() / ".cache" / "commitplan" / "focus-validator"


def _python_minor(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print(*sys.version_info[:2])"],
            check=False, capture_output=True, text=True, timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    major, minor = out.stdout.split()
    return int(major), int(minor)


def find_python312() -> str | None:
    """A Python 3.12 interpreter: $COMMITPLAN_PYTHON312, python3.12 on PATH, or pyenv's."""
    candidates: list[str] = []
    env = os.environ.get("COMMITPLAN_PYTHON312")
    if env:
        candidates.append(env)
    on_path = shutil.which("python3.12")
    if on_path:
        candidates.append(on_path)
    for root in ("/root/.pyenv", os.path.expanduser("~/.pyenv"), os.environ.get("PYENV_ROOT", "")):
        if root:
            candidates += sorted(glob.glob(os.path.join(root, "versions", "3.12.*", "bin", "python3.12")),
                                 reverse=True)
    for candidate in candidates:
        if _python_minor(candidate) == (3, 12):
            return candidate
    if env:
        raise FocusValidatorError(f"COMMITPLAN_PYTHON312={env} is not a working Python 3.12")
    return None


def _venv_python(path: Path) -> Path:
    return path / "bin" / "python"


def _read_marker(path: Path) -> dict | None:
    try:
        marker = json.loads((path / _MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if marker.get("requirements") != list(PINNED_REQUIREMENTS):
        return None
    if not _venv_python(path).exists():
        return None
    if not (Path(marker.get("site_packages", "")) / "focus_validator" / "rules" / "currency_codes.csv").is_file():
        return None
    return marker


@contextmanager
def _lock(path: Path):
    """Serialise installs (pytest-xdist workers may all ask for the venv at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.parent / f".{path.name}.lock"
    with open(lock_path, "w") as handle:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_validator_venv(path: Path | None = None) -> Path:
    """Return a venv with the pinned focus-validator, creating it if needed.

    Default location ``~/.cache/commitplan/focus-validator`` (or
    ``$COMMITPLAN_FOCUS_VALIDATOR_VENV``). Idempotent: when the venv's marker file lists
    exactly ``PINNED_REQUIREMENTS`` nothing is run (a few file reads); otherwise the venv is
    rebuilt from scratch with Python 3.12 (see :func:`find_python312`) and pip. Needs access
    to the package registry the first time (about 30 s).
    """
    path = Path(path) if path is not None else default_venv_path()
    path = path.expanduser().absolute()
    if _read_marker(path):
        return path
    with _lock(path):
        if _read_marker(path):  # another process built it while we waited
            return path
        python = find_python312()
        if python is None:
            raise FocusValidatorError(
                "focus-validator 2.x needs Python 3.12: set COMMITPLAN_PYTHON312 or put "
                "python3.12 on PATH"
            )
        (path / _MARKER).unlink(missing_ok=True)
        subprocess.run([python, "-m", "venv", "--clear", str(path)], check=True,
                       capture_output=True, text=True)
        vpy = str(_venv_python(path))
        pip = subprocess.run(
            [vpy, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             *PINNED_REQUIREMENTS],
            check=False, capture_output=True, text=True,
        )
        if pip.returncode != 0:
            raise FocusValidatorError(f"pip install into {path} failed:\n{pip.stdout}\n{pip.stderr}")
        code = ("import os, focus_validator; from importlib.metadata import version; "
                "print(version('focus-validator')); "
                "print(os.path.dirname(os.path.dirname(focus_validator.__file__)))")
        probe = subprocess.run([vpy, "-c", code], check=False, capture_output=True, text=True)
        if probe.returncode != 0:
            raise FocusValidatorError(f"focus_validator does not import in {path}:\n{probe.stderr}")
        version, site_packages = probe.stdout.split("\n")[:2]
        if version != FOCUS_VALIDATOR_VERSION:
            raise FocusValidatorError(f"installed focus-validator {version}, wanted {FOCUS_VALIDATOR_VERSION}")
        (path / _LOGGING_CONFIG).write_text(_LOGGING_YAML, encoding="utf-8")
        marker = {"requirements": list(PINNED_REQUIREMENTS), "python": python,
                  "site_packages": site_packages}
        (path / _MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    return path
