"""Which words of an argv start programs: the first, and whatever a launcher runs.

`sudo -u www-data wp ...` runs `wp`; `timeout 30 nginx -t` runs `nginx`;
`docker exec -u 0 shop-db mysqladmin ...` runs `mysqladmin` in a container.
A parameter must never stand where a program is chosen, so the catalogue
needs to know those positions, not just the first word.
"""

from __future__ import annotations

from pathlib import PurePosixPath

# launcher: (its options that take a value, positional words before the program it runs)
LAUNCHERS: dict[str, tuple[frozenset[str], int]] = {
    "sudo": (frozenset({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T", "-R",
                        "--user", "--group", "--chdir", "--host", "--prompt", "--role",
                        "--type", "--other-user", "--close-from", "--chroot",
                        "--command-timeout"}), 0),
    "doas": (frozenset({"-u", "-C"}), 0),
    "runuser": (frozenset({"-u", "-g", "-G", "--user", "--group"}), 0),
    "nice": (frozenset({"-n", "--adjustment"}), 0),
    "ionice": (frozenset({"-c", "-n", "-p", "-P", "-u", "--class", "--classdata"}), 0),
    "timeout": (frozenset({"-s", "-k", "--signal", "--kill-after"}), 1),
    "nohup": (frozenset(), 0),
    "setsid": (frozenset(), 0),
    "stdbuf": (frozenset({"-i", "-o", "-e"}), 0),
    "chrt": (frozenset(), 1),
    "taskset": (frozenset(), 1),
    "flock": (frozenset({"-w", "-E", "--timeout", "--conflict-exit-code"}), 1),
}  # fmt: skip
CONTAINER_TOOLS = frozenset({"docker", "podman", "docker-compose", "kubectl"})
CONTAINER_VALUE_OPTIONS = frozenset(
    {"-u", "--user", "-w", "--workdir", "-e", "--env", "--env-file", "-c", "--container",
     "-n", "--namespace", "--name", "-v", "--volume", "--network", "--entrypoint"}
)  # fmt: skip


def program_name(word: str) -> str:
    return PurePosixPath(word).name


def program_positions(argv: list[str]) -> list[int]:
    """Indices of the words that name a program to run."""
    positions: list[int] = []
    index = 0
    while index < len(argv):
        positions.append(index)
        name = program_name(argv[index])
        if name in LAUNCHERS:
            value_options, positional = LAUNCHERS[name]
            index = _skip_options(argv, index + 1, value_options) + positional
        elif name in CONTAINER_TOOLS:
            index = _container_program(argv, index + 1)
        else:
            break
    return [position for position in positions if position < len(argv)]


def _container_program(argv: list[str], index: int) -> int:
    """Past `exec`/`run`, their options and the container: where the program stands."""
    index = _skip_options(argv, index, frozenset())
    if index < len(argv) and argv[index] == "compose":
        index = _skip_options(argv, index + 1, frozenset())
    if index >= len(argv) or argv[index] not in ("exec", "run"):
        return len(argv)
    index = _skip_options(argv, index + 1, CONTAINER_VALUE_OPTIONS) + 1
    if index < len(argv) and argv[index] == "--":
        index += 1
    return index


def _skip_options(argv: list[str], index: int, value_options: frozenset[str]) -> int:
    while index < len(argv) and argv[index].startswith("-"):
        word = argv[index]
        if word == "--":
            return index + 1
        index += 2 if word in value_options else 1
    return index
