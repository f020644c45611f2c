"""The container image, built from the real Dockerfile with podman on a base bootstrapped from Debian's
packages (no image registry is reachable here), and containers run from it on the host's network.

The bootstrapped base is kept between runs on the same machine: as an image in podman's storage, and as
a tarball in ``TARGET_PROXY_TEST_CACHE`` (default ``/var/cache/target-proxy-tests``) to import again.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASE = "localhost/target-proxy-base:bookworm"
IMAGE = "localhost/target-proxy:test"
CACHE = Path(os.environ.get("TARGET_PROXY_TEST_CACHE", "/var/cache/target-proxy-tests"))
PACKAGES = "python3,python3-pip,python3-venv,ca-certificates"
# This machine reaches PyPI through its own certificate authorities: the base trusts what the host trusts,
# as a base image built inside an organisation does.
HOST_CERTIFICATES = Path("/etc/ssl/certs/ca-certificates.crt")


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def ensure_base() -> None:
    if podman("image", "exists", BASE, check=False).returncode == 0:
        return
    tarball = CACHE / "debian-bookworm-python.tar"
    if not tarball.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=CACHE) as work:
            rootfs = Path(work) / "rootfs"
            subprocess.run(
                ["debootstrap", "--variant=minbase", f"--include={PACKAGES}", "bookworm", str(rootfs),
                 "http://deb.debian.org/debian"],
                capture_output=True, text=True, timeout=600, check=True,
            )  # fmt: skip
            shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
            if HOST_CERTIFICATES.exists():
                shutil.copy(HOST_CERTIFICATES, rootfs / "etc/ssl/certs/ca-certificates.crt")
                (rootfs / "etc/pip.conf").write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")
            partial = tarball.with_suffix(".partial")
            subprocess.run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True, timeout=300)
            partial.replace(tarball)
    podman("import", "--quiet", str(tarball), BASE, timeout=300)


def build_image() -> None:
    """The Dockerfile as it is, on the bootstrapped base; podman's layer cache keeps the dependencies'
    layer until constraints.txt changes."""
    ensure_base()
    podman(
        "build", "--quiet", "--format", "docker", "--isolation=chroot", "--network=host",
        "--from", BASE, "-t", IMAGE, str(ROOT),
        timeout=600,
    )  # fmt: skip


def run_flags() -> list[str]:
    """runc on the host's network; the limits are the host's own (this sandbox may not raise them)."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return [
        "--runtime", "runc", "--network", "host",
        "--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", "nproc=4096:4096",
    ]  # fmt: skip


def run(name: str, *args: str, options: Sequence[str] = (), detach: bool = True, timeout: float = 60) -> str:
    """``podman run`` of the image (``args`` after the image name); the container's id, or its output
    when not detached."""
    podman("rm", "--force", "--ignore", name, check=False)
    flags = ["--detach"] if detach else []
    result = podman("run", *flags, "--name", name, *run_flags(), *options, IMAGE, *args, timeout=timeout, check=False)
    if detach and result.returncode != 0:
        raise RuntimeError(f"podman run failed:\n{result.stderr}")
    return result.stdout.strip() if detach else result.stdout + result.stderr


def logs(name: str) -> str:
    result = podman("logs", name, check=False)
    return result.stdout + result.stderr


def remove(name: str) -> None:
    podman("rm", "--force", "--ignore", "--time", "1", name, check=False)


def available() -> str | None:
    """Why the container tests cannot run here, or None."""
    if shutil.which("podman") is None:
        return "podman is not installed (bash .ci/run installs it)"
    if shutil.which("debootstrap") is None and podman("image", "exists", BASE, check=False).returncode != 0:
        return "debootstrap is not installed (bash .ci/run installs it)"
    if os.geteuid() != 0:
        return "building and running the image needs root (podman --isolation=chroot)"
    return None
