"""Checks of deploy/Dockerfile that need no Docker engine: its structure,
that every package it installs exists in Debian 12, and (with the binary)
that the runtime package list brings every library the binary links."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from tests.deploy.harness import DEPLOY, EXAMPLES, Runner, Skip, expect, run

DOCKERFILE = DEPLOY / "Dockerfile"
RUNTIME_PACKAGES = DEPLOY / "runtime-packages.txt"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined, comments dropped."""
    out, current = [], ""
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#") and not current:
            continue
        current += line.rstrip("\\").strip() + " " if line.rstrip().endswith("\\") else line.strip()
        if not line.rstrip().endswith("\\"):
            if current.strip():
                word, _, rest = current.strip().partition(" ")
                out.append((word.upper(), rest.strip()))
            current = ""
    return out


def stages(path: Path) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for ins in instructions(path):
        if ins[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(ins)
    return result


def runtime_packages() -> list[str]:
    return [l.strip() for l in RUNTIME_PACKAGES.read_text().splitlines() if l.strip() and not l.startswith("#")]


def builder_packages() -> list[str]:
    first = stages(DOCKERFILE)[0]
    text = " ".join(args for word, args in first if word == "RUN")
    m = re.search(r"apt-get install -y --no-install-recommends (.*?)(?:&&|$)", text)
    expect(m is not None, "the builder stage installs no packages with apt-get")
    return m.group(1).split()


def check_structure() -> None:
    st = stages(DOCKERFILE)
    expect(len(st) >= 2, f"deploy/Dockerfile has {len(st)} stage(s); want a builder and a runtime stage")
    for s in st:
        image = s[0][1].split()[0]
        expect(re.fullmatch(r"debian:12(-slim)?", image) is not None, f"stage FROM {image} is not Debian 12")
    build = " ".join(a for w, a in st[0] if w == "RUN")
    expect("cmake -S . -B build" in build and "cmake --build build" in build,
           "the builder stage must run cmake -S . -B build && cmake --build build")
    final = st[-1]
    copies = [a for w, a in final if w == "COPY"]
    expect(any("--from=builder" in a and "build/cellar" in a for a in copies),
           "the runtime stage must copy build/cellar from the builder")
    expect(not any(w == "COPY" and ". ." in a for w, a in final), "the runtime stage must not copy the sources")
    users = [a for w, a in final if w == "USER"]
    expect(users and users[-1].split(":")[0] not in ("0", "root"), "the runtime image must default to a non-root USER")
    final_text = " ".join(a for w, a in final)
    expect("-dev" not in final_text and "g++" not in final_text, "the runtime stage installs build tools")
    expect("runtime-packages.txt" in final_text, "the runtime stage must install deploy/runtime-packages.txt")


def apt_candidates(packages: list[str]) -> dict[str, str]:
    if shutil.which("apt-cache") is None:
        raise Skip("apt-cache is not available")
    out = run(["apt-cache", "policy", *packages]).stdout
    found, current = {}, None
    for line in out.splitlines():
        if line and not line.startswith(" "):
            current = line.rstrip(":")
        elif current and line.strip().startswith("Candidate:"):
            found[current] = line.split(":", 1)[1].strip()
    return found


def check_packages_exist() -> None:
    wanted = builder_packages() + runtime_packages()
    candidates = apt_candidates(wanted)
    if candidates.get("libc6", "(none)") == "(none)" and apt_candidates(["libc6"]).get("libc6", "(none)") == "(none)":
        raise Skip("no apt package lists here (run apt-get update)")
    missing = [p for p in wanted if candidates.get(p, "(none)") == "(none)"]
    expect(not missing, f"not Debian 12 packages: {missing}")
    # The runtime list must also install together (apt resolves, installs nothing).
    proc = run(["apt-get", "-s", "install", "--no-install-recommends", *runtime_packages()], check=False)
    expect(proc.returncode == 0, f"apt-get cannot install the runtime packages:\n{proc.stderr.strip()}")


def check_binary_libraries(binary: str | None) -> None:
    if not binary:
        raise Skip("no cellar binary given")
    path = Path(binary)
    expect(path.is_file(), f"cellar binary {binary} does not exist")
    proc = run(["sh", str(DEPLOY / "check-runtime-packages.sh"), str(path), str(RUNTIME_PACKAGES)], check=False)
    expect(proc.returncode == 0, "deploy/runtime-packages.txt misses libraries the binary links:\n"
           + proc.stderr.strip())


def check_examples_image() -> None:
    text = (EXAMPLES / "Dockerfile").read_text()
    expect("COPY steps/steps.py /opt/cellar-examples/steps.py" in text,
           "examples/Dockerfile must install steps.py at /opt/cellar-examples/steps.py")
    froms = [a for w, a in instructions(EXAMPLES / "Dockerfile") if w == "FROM"]
    expect(froms == ["debian:12-slim"], f"examples image FROM {froms}")


def register(runner: Runner, binary: str | None) -> None:
    runner.check("image: deploy/Dockerfile is multi-stage Debian 12, non-root, runtime libraries only",
                 check_structure)
    runner.check("image: every package the Dockerfile installs exists in Debian 12", check_packages_exist)
    runner.check("image: runtime-packages.txt brings every library the binary links",
                 check_binary_libraries, binary)
    runner.check("image: the examples image carries steps.py", check_examples_image)
