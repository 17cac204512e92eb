"""The wheel holds every module: build it, install it into a fresh virtual environment,
import every module of castroom.core/plugins/sync there and run ``castroom --help``.

The fresh environment gets the dependencies by pointing at this environment's
site-packages (no network, no editable install: a .pth line adds the folder to sys.path
without running the editable-install hooks inside it), so only the wheel provides
``castroom``.
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

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"core": "castroom.core", "plugins": "castroom.plugins", "sync": "castroom.sync"}


def source_modules() -> list[str]:
    names = []
    for folder, package in PACKAGES.items():
        names.append(package)
        for path in sorted((ROOT / folder).glob("*.py")):
            if path.stem != "__init__":
                names.append(f"{package}.{path.stem}")
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
        expected = "/".join(parts) + ("/__init__.py" if name in PACKAGES.values() else ".py")
        assert expected in files, f"{expected} missing from the wheel"
    assert not any(f.startswith(("core/", "sync/", "plugins/", "tests/")) for f in files)

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    target = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # Unpack the wheel as pip would (pure Python: copy the files, write the script).
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    here = [p for p in site.getsitepackages() if Path(p).exists()]
    Path(target, "deps-from-test-env.pth").write_text("\n".join(here) + "\n")
    script = env_dir / "bin" / "castroom"
    script.write_text(
        f"#!{python}\nimport sys\nfrom castroom.core.cli import main\nsys.exit(main())\n"
    )
    script.chmod(0o755)

    modules = source_modules()
    code = (
        "import importlib, sys\n"
        f"names = {modules!r}\n"
        "for name in names:\n"
        "    module = importlib.import_module(name)\n"
        f"    assert module.__file__.startswith({target!r}), (name, module.__file__)\n"
        "print(len(names))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
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
