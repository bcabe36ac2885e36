"""The emulated Raspberry Pi's files, built once and cached (benchmarks/emulated_pi.py):
an aarch64 sysroot of Debian bookworm arm64 packages (Pi OS's Python 3.11 and libraries)
fetched with a private apt configuration and unpacked with ``dpkg -x``; a qemu -L prefix per
board with that board's /proc/cpuinfo (why: emulated_pi.py's docstring); and the wheel
folders pip resolves for the Pi target (and the same versions for this machine).
Stdlib only at import: the worker imports emulated_pi.py, which imports this, inside the
emulated interpreter."""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

TARGET_NAME = "pi-bookworm-aarch64-cp311"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_SUITE = "bookworm"
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# python3.11 brings libc, libssl, libffi, zlib...; the wheels need the C++ runtime and OpenMP.
DEBIAN_PACKAGES = ("python3.11", "libstdc++6", "libgcc-s1", "libgomp1")

# The boards: QEMU_CPU and the /proc/cpuinfo their kernel shows (one block per CPU that
# the emulated program can see, i.e. this machine's).
BOARDS = {
    "pi4": {"qemu_cpu": "cortex-a72", "part": "0xd08", "revision": "3", "features":
            "fp asimd evtstrm crc32 cpuid", "model": "Raspberry Pi 4 Model B Rev 1.4",
            "hardware": "BCM2835"},
    "pi5": {"qemu_cpu": "cortex-a76", "part": "0xd0b", "revision": "1", "features":
            "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid "
            "asimdrdm lrcpc dcpop asimddp", "model": "Raspberry Pi 5 Model B Rev 1.0",
            "hardware": "BCM2835"},
}


class Unavailable(Exception):
    """Something this check needs is missing here: nothing was checked (exit code 2)."""



def find_qemu() -> str | None:
    return shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")


def _apt(apt_root: Path, *args: str) -> None:
    opts = {
        "Dir::Etc::SourceList": apt_root / "sources.list",
        "Dir::Etc::SourceParts": apt_root / "empty",
        "Dir::Etc::Preferences": apt_root / "empty" / "preferences",
        "Dir::Etc::PreferencesParts": apt_root / "empty",
        "Dir::State": apt_root / "state",
        "Dir::State::status": apt_root / "status",
        "Dir::Cache": apt_root / "cache",
        "APT::Architecture": "arm64",
        "APT::Architectures": "arm64",
        "APT::Sandbox::User": "root" if os.geteuid() == 0 else os.environ.get("USER", ""),
        "Debug::NoLocking": "1",
    }
    cmd = ["apt-get", "-q", "-y"]
    for key, value in opts.items():
        cmd += ["-o", f"{key}={value}"]
    proc = subprocess.run(cmd + list(args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    if proc.returncode != 0:
        raise Unavailable(f"apt-get {args[-1]} failed (is {DEBIAN_MIRROR} reachable?): "
                          + proc.stderr.strip()[-500:])


def build_sysroot(cache: Path) -> Path:
    """Debian bookworm arm64 python3.11 and libraries unpacked into cache/sysroot."""
    sysroot = cache / "sysroot"
    stamp = sysroot / ".edgepose-packages"
    if stamp.is_file():
        return sysroot
    for tool in ("apt-get", "dpkg"):
        if shutil.which(tool) is None:
            raise Unavailable(f"{tool} is not available: the sysroot is built from Debian "
                             "packages on a Debian or Ubuntu host")
    apt_root = cache / "apt"
    for sub in ("state/lists/partial", "cache/archives/partial", "empty"):
        (apt_root / sub).mkdir(parents=True, exist_ok=True)
    (apt_root / "status").touch()
    (apt_root / "sources.list").write_text(
        f"deb [arch=arm64 signed-by={DEBIAN_KEYRING}] {DEBIAN_MIRROR} {DEBIAN_SUITE} main\n")
    print(f"sysroot: downloading {', '.join(DEBIAN_PACKAGES)} (arm64, {DEBIAN_SUITE})")
    _apt(apt_root, "update")
    # An empty dpkg status makes apt fetch every dependency, down to libc6.
    _apt(apt_root, "--download-only", "--no-install-recommends", "install", *DEBIAN_PACKAGES)
    debs = sorted((apt_root / "cache" / "archives").glob("*.deb"))
    tmp = cache / "sysroot.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for deb in debs:
        subprocess.run(["dpkg", "-x", str(deb), str(tmp)], check=True)
    (tmp / stamp.name).write_text("\n".join(d.name for d in debs) + "\n")
    shutil.rmtree(sysroot, ignore_errors=True)
    tmp.rename(sysroot)
    print(f"sysroot: {len(debs)} packages in {sysroot}")
    return sysroot


def board_root(cache: Path, sysroot: Path, board: str | None) -> Path:
    """A prefix for qemu -L: links to the sysroot plus, for a board, its /proc/cpuinfo.
    board None keeps the host's /proc/cpuinfo (what plain qemu-user shows)."""
    root = cache / f"root-{board or 'host-cpuinfo'}"
    root.mkdir(parents=True, exist_ok=True)
    for entry in sysroot.iterdir():
        if entry.name.startswith("."):
            continue
        link = root / entry.name
        if not link.is_symlink():
            link.symlink_to(entry)
    if board is not None:
        (root / "proc").mkdir(exist_ok=True)
        (root / "proc" / "cpuinfo").write_text(fake_cpuinfo(BOARDS[board]))
    return root


def _host_cpus() -> list[int]:
    """CPU numbers in /sys/devices/system/cpu/present: the emulated program sees these."""
    try:
        text = Path("/sys/devices/system/cpu/present").read_text().strip()
    except OSError:
        return list(range(os.cpu_count() or 1))
    cpus = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        cpus += range(int(first), int(last or first) + 1)
    return cpus


def fake_cpuinfo(board: dict) -> str:
    blocks = [
        f"processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: {board['features']}\n"
        f"CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\n"
        f"CPU part\t: {board['part']}\nCPU revision\t: {board['revision']}\n"
        for i in _host_cpus()
    ]
    return "\n".join(blocks) + f"\nHardware\t: {board['hardware']}\nModel\t\t: {board['model']}\n"


@functools.lru_cache(maxsize=None)
def resolved_pins(extras: tuple[str, ...]) -> tuple[str, ...]:
    """``name==version`` of what edgepose[extras] resolves to on the Pi target."""
    from install_targets import TARGETS_BY_NAME, RegistryUnreachable, pinned, resolve

    try:
        return tuple(pinned(resolve(TARGETS_BY_NAME[TARGET_NAME], extras)))
    except RegistryUnreachable as exc:
        raise Unavailable(f"the package registry cannot be reached: {exc}") from None


def prune_wheel_folders(cache: Path, keep: set[Path]) -> None:
    """Remove wheel folders this run did not use (older pins): each holds ~300 MB."""
    for folder in (cache / "wheels").iterdir():
        if folder not in keep:
            shutil.rmtree(folder, ignore_errors=True)


def wheel_folder(cache: Path, extras: tuple[str, ...], litert: str | None = None,
                 host: bool = False) -> tuple[Path, list[str]]:
    """The wheels pip resolves for the Pi target (edgepose[extras]), installed with
    --target; ``litert`` replaces the ai-edge-litert version. ``host`` installs the same
    versions built for this machine instead, for the reference run. Cached by pins."""
    from install_targets import TARGETS_BY_NAME

    target = TARGETS_BY_NAME[TARGET_NAME]
    pins = list(resolved_pins(extras))
    if litert is not None:
        pins = [p for p in pins if not p.startswith("ai-edge-litert==")]
        pins.append(f"ai-edge-litert=={litert}")
    where = f"host-{sys.implementation.cache_tag}" if host else target.name
    key = hashlib.sha256("\n".join([where, *sorted(pins)]).encode()).hexdigest()[:12]
    folder = cache / "wheels" / key
    if not (folder / ".edgepose-pins").is_file():
        print(f"wheels: installing {len(pins)} packages for {where} into {folder}")
        tmp = folder.with_name(key + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        platform_args = ["--only-binary=:all:"] if host else target.pip_args()
        proc = subprocess.run([sys.executable, "-m", "pip", "install", "-qq", "--no-deps",
                               "--no-warn-conflicts", "--disable-pip-version-check", "--target",
                               str(tmp), *platform_args, *pins], capture_output=True, text=True)
        if proc.returncode != 0:
            raise Unavailable(f"pip could not install the wheels for {where}: "
                              + proc.stderr.strip()[-500:])
        (tmp / ".edgepose-pins").write_text(where + "\n" + "\n".join(pins) + "\n")
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
    return folder, pins
