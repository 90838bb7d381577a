"""The lab images: Debian bookworm with the lab's servers, built with no registry.

Image `base` holds Knot, Dovecot, Perdition, Exim and pyspf (every container of the default
exim+dovecot lab runs it); the `postfix` and `sendmail` images hold the MTA of those flavours
and its milters (Debian's MTAs conflict with each other, so each has its own image).

`mmdebstrap` builds a root filesystem tarball from the host's apt sources; `podman import`
(or `docker import`) turns it into an image. The tag is a hash of the package list and build
recipe, so the image is rebuilt only when that changes. `files/Containerfile` installs the same
packages `FROM debian:bookworm-slim` for users who have a registry (a unit test keeps the two
lists equal).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from probes.lab.doctor import DockerApi, Say, _quiet, ensure_image_tools
from probes.lab.opendkim_conf import UB_LOCK_LIBRARY

SUITE = "bookworm"
PACKAGES: tuple[str, ...] = (
    "ca-certificates",
    "dovecot-core",
    "dovecot-imapd",
    "dovecot-lmtpd",
    "dovecot-pop3d",
    "exim4-daemon-heavy",
    "knot",
    "perdition",
    "procps",
    "python3-dnspython",
    "python3-spf",
)
# Packages every image has besides its servers.
COMMON_PACKAGES: tuple[str, ...] = ("ca-certificates", "procps")
IMAGE_KINDS = ("base", "postfix", "sendmail")
# Bump when the recipe below changes in a way the package list does not show.
RECIPE_REVISION = "1"
IMAGE_REPO = "localhost/mailprobe-lab"
CONTAINERFILE = Path(__file__).parent / "files" / "Containerfile"


class ImageBuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class ImageInfo:
    name: str
    built: bool  # True when this call built it, False when it came from the cache
    build_s: float = 0.0
    import_s: float = 0.0


def image_packages(kind: str = "base") -> tuple[str, ...]:
    if kind == "base":
        return PACKAGES
    from probes.lab.flavours import MTA_MODULES

    if kind not in IMAGE_KINDS:
        raise ValueError(f"unknown lab image kind {kind!r}; one of {', '.join(IMAGE_KINDS)}")
    return tuple(sorted({*COMMON_PACKAGES, *MTA_MODULES[kind].PACKAGES}))


# Images holding OpenDKIM get a 20-line LD_PRELOAD library that serialises libunbound's
# ub_ctx_config() (files/ub-config-lock.c: Debian 12's OpenDKIM calls it per message from many
# threads, and concurrent messages crash it). It is compiled in the image with a gcc that is
# purged again.
UB_LOCK_SOURCE = Path(__file__).parent / "files" / "ub-config-lock.c"
_UB_LOCK_BUILD = (
    "apt-get install -y -q --no-install-recommends gcc libc6-dev >/dev/null"
    f" && gcc -shared -fPIC -O2 -o {UB_LOCK_LIBRARY} /usr/local/src/ub-config-lock.c"
    " -ldl -lpthread"
    " && apt-get purge -y -q --autoremove gcc libc6-dev >/dev/null"
)


def _customize_hooks(kind: str) -> list[str]:
    if "opendkim" not in image_packages(kind):
        return []
    return [
        f"--customize-hook=upload {UB_LOCK_SOURCE} /usr/local/src/ub-config-lock.c",
        f"--customize-hook=chroot \"$1\" sh -ec '{_UB_LOCK_BUILD}'",
    ]


def image_tag(kind: str = "base") -> str:
    recipe = "\n".join([SUITE, RECIPE_REVISION, *sorted(image_packages(kind))])
    if _customize_hooks(kind):
        recipe += "\n" + _UB_LOCK_BUILD + "\n" + UB_LOCK_SOURCE.read_text()
    return hashlib.sha256(recipe.encode()).hexdigest()[:12]


def image_name(kind: str = "base") -> str:
    repo = IMAGE_REPO if kind == "base" else f"{IMAGE_REPO}-{kind}"
    return f"{repo}:{image_tag(kind)}"


def _docker_client(api: DockerApi):  # -> docker.DockerClient (imported lazily: slow import)
    import docker

    return docker.DockerClient(base_url=api.url, version="1.41", timeout=120)


def image_exists(api: DockerApi, name: str | None = None) -> bool:
    import docker.errors

    client = _docker_client(api)
    try:
        client.images.get(name or image_name())
        return True
    except docker.errors.ImageNotFound:
        return False
    finally:
        client.close()


def _import_cli(api: DockerApi) -> str:
    if api.engine == "podman" and shutil.which("podman"):
        return "podman"
    if shutil.which("docker"):
        return "docker"
    if shutil.which("podman"):
        return "podman"
    raise ImageBuildError("neither podman nor docker CLI found to import the lab image")


def _check(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-20:])
        raise ImageBuildError(f"{what} failed (status {proc.returncode}):\n{tail}")


def build_image(
    api: DockerApi, say: Say = _quiet, *, force: bool = False, kind: str = "base"
) -> ImageInfo:
    """Make sure a lab image exists; build and import it when the cache misses."""
    name = image_name(kind)
    packages = image_packages(kind)
    if not force and image_exists(api, name):
        say(f"lab image {name}: cached")
        return ImageInfo(name, built=False)
    ensure_image_tools(say)
    say(f"building lab image {name} with mmdebstrap ({len(packages)} packages, ~1 min)")
    with tempfile.TemporaryDirectory(prefix="mailprobe-image-") as tmp:
        tar = Path(tmp) / "rootfs.tar"
        t0 = time.perf_counter()
        _check(
            [
                "mmdebstrap",
                "--variant=apt",
                "--quiet",
                "--include=" + ",".join(packages),
                "--dpkgopt=path-exclude=/usr/share/doc/*",
                "--dpkgopt=path-exclude=/usr/share/man/*",
                "--dpkgopt=path-exclude=/usr/share/locale/*",
                *_customize_hooks(kind),
                "--customize-hook=rm -rf $1/var/lib/apt/lists/* $1/var/cache/apt/*",
                SUITE,
                str(tar),
            ],
            "mmdebstrap",
        )
        t1 = time.perf_counter()
        cli = _import_cli(api)
        _check(
            [cli, "import", "--change", 'CMD ["/bin/bash"]', str(tar), name],
            f"{cli} import",
        )
        t2 = time.perf_counter()
    say(f"lab image {name}: built in {t1 - t0:.1f} s, imported in {t2 - t1:.1f} s")
    return ImageInfo(name, built=True, build_s=t1 - t0, import_s=t2 - t1)


def containerfile_path(kind: str = "base") -> Path:
    """files/Containerfile (base) or files/Containerfile.<kind>: the same image, for a registry."""
    return CONTAINERFILE if kind == "base" else CONTAINERFILE.with_name(f"Containerfile.{kind}")


def containerfile_packages(text: str | None = None) -> list[str]:
    """The package list of files/Containerfile (for the test that keeps it equal to PACKAGES)."""
    text = text if text is not None else CONTAINERFILE.read_text()
    joined = text.replace("\\\n", " ")
    for line in joined.splitlines():
        if "apt-get install" in line:
            words = line.split("apt-get install", 1)[1].split("&&")[0].split()
            return sorted(w for w in words if not w.startswith("-"))
    return []
