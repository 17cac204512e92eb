"""The wheel holds every module: build it, install it into a fresh virtual environment,
import every module of castroom.core/plugins/sync there and run ``castroom --help``.

pip installs the wheel (``--no-deps --no-index``: offline) into the fresh environment,
console script included. The dependencies then come from this environment's
site-packages through a .pth line (no network; a folder added that way does not run the
editable-install hook inside it), so only the wheel provides ``castroom``.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from patience import PATIENCE

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "core": "castroom.core",
    "plugins": "castroom.plugins",
    "sync": "castroom.sync",
}
#: The dashboard's built assets (package data), without which `castroom serve` serves no page.
WEB_ASSETS = ("index.html", "app.js", "app.css", "sw.js")


def source_modules() -> list[str]:
    """Every module of the three source folders, subpackages (core/cli) included."""
    names = []
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            names.append(".".join((package, *parts)))
    return names


@pytest.mark.slow
def test_wheel_installs_and_imports_every_module(tmp_path: Path) -> None:
    # Build from a copy: no build/ or egg-info left in (or raced over in) the work tree.
    source = tmp_path / "src"
    for name in (*PACKAGES, "pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name,
                source / name,
                ignore=shutil.ignore_patterns("__pycache__", "node_modules"),
            )
        elif (ROOT / name).exists():
            source.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    dist = tmp_path / "dist"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--skip-dependency-check",
            "--outdir",
            str(dist),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    [wheel] = list(dist.glob("castroom-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        files = set(archive.namelist())
    for name in source_modules():
        parts = name.split(".")
        package = ROOT.joinpath(*parts[1:]).is_dir()
        expected = "/".join(parts) + ("/__init__.py" if package else ".py")
        assert expected in files, f"{expected} missing from the wheel"
    assert not any(f.startswith(("core/", "sync/", "plugins/", "tests/")) for f in files)
    for asset in WEB_ASSETS:
        assert f"castroom/sync/web/static/{asset}" in files, f"{asset} missing from the wheel"
    # Its sources and npm packages stay out: nobody builds anything on their machine.
    assert not any(
        f.startswith("castroom/sync/web/") and "/static/" not in f and not f.endswith(".py")
        for f in files
    ), sorted(files)

    # A fresh environment; pip itself installs the wheel (its files, RECORD and the
    # console script), offline, from this environment's pip (``--python`` targets the new
    # one, which needs no pip of its own).
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_INDEX_URL")}
    pip = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "--disable-pip-version-check",
            "install",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        env=env,
    )
    assert pip.returncode == 0, pip.stdout[-2000:] + pip.stderr[-2000:]
    target = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # Only now (so pip above saw an empty environment) make the dependencies importable
    # offline: a .pth line puts this environment's site-packages after the venv's own.
    # A folder added that way has its own .pth files ignored, so this checkout's editable
    # install stays inactive and only the wheel can provide castroom.
    here = [p for p in site.getsitepackages() if Path(p).exists()]
    Path(target, "zz-deps-from-test-env.pth").write_text("\n".join(here) + "\n")

    script = env_dir / "bin" / "castroom"
    assert script.exists(), "pip did not install the castroom console script"
    assert script.read_text().splitlines()[0] == f"#!{python}", "script not bound to the venv"

    modules = source_modules()
    code = (
        "import importlib, importlib.metadata, sys\n"
        f"names = {modules!r}\n"
        "for name in names:\n"
        "    module = importlib.import_module(name)\n"
        f"    assert module.__file__.startswith({target!r}), (name, module.__file__)\n"
        "dist = importlib.metadata.distribution('castroom')\n"
        f"assert str(dist.locate_file('')).startswith({target!r}), dist.locate_file('')\n"
        "print(len(names))\n"
    )
    result = subprocess.run(
        [str(python), "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert int(result.stdout.strip()) == len(modules)
    helped = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120
    )
    assert helped.returncode == 0, helped.stderr[-3000:]
    assert "init" in helped.stdout and "bundle" in helped.stdout
    # The installed package serves the dashboard from its own files.
    served = subprocess.run(
        [
            str(python),
            "-c",
            "from castroom.sync.web.assets import asset; print(len(asset('app.js')))",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=PATIENCE,
    )
    assert served.returncode == 0 and int(served.stdout) > 1000, served.stderr[-2000:]
