"""Drive ZooKeeper's own CLI (zkCli.sh, the Java client) and compare what it prints.

zkCli is what operators type at a server, and it is the Java client underneath: if its output
for a script differs between ZooKeeper and keepr, an operator (or a tool scraping zkCli) sees
the difference. A scripted session is compared after normalising what legitimately differs
between two servers: zxids, times, session ids, JVM noise, and the order of names in child
lists (ZooKeeper keeps children in a hash set, so its order is unspecified).

Command output and watch events are separated: events are printed by the Java client's event
thread, so where they land between command outputs is a race, but their order among
themselves is the order the server sent them. To know which output belongs to which command,
each command is followed by `stat` of a node that never exists; its "Node does not exist"
line ends the command's section.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import threading
from dataclasses import dataclass

from . import servers

SCRIPT_DEADLINE_S = 120.0
LINE_WAIT_S = 60.0

_WATCHED_EVENT = re.compile(r"^WatchedEvent state:(\S+) type:(\S+) path:(.*)$")
_ZXID = re.compile(r"^(cZxid|mZxid|pZxid) = 0x[0-9a-f]+$")
_TIME = re.compile(r"^(ctime|mtime) = .+$")
_OWNER = re.compile(r"^ephemeralOwner = 0x[0-9a-f]+$")
_LIST = re.compile(r"^\[(.*)\]$")


def _env() -> dict:
    env = dict(os.environ)
    # A small heap: zkCli needs little, and suites may run several at once.
    env["CLIENT_JVMFLAGS"] = "-Xmx128m -XX:+UseSerialGC"
    return env


def marker_path(base: str, step: int) -> str:
    return f"{base}-step-{step}"


def _marker_line(base: str, step: int) -> str:
    return f"Node does not exist: {marker_path(base, step)}"


@dataclass
class Transcript:
    sections: list  # [(command, [normalised output lines])]
    events: list  # normalised "WatchedEvent ..." lines, in arrival order
    exit_code: int


def normalise_line(line: str) -> str:
    if _ZXID.match(line):
        return line.split(" = ")[0] + " = <zxid>"
    if _TIME.match(line):
        return line.split(" = ")[0] + " = <time>"
    if _OWNER.match(line) and line != "ephemeralOwner = 0x0":
        return "ephemeralOwner = <session>"
    match = _LIST.match(line)
    if match:
        items = [item for item in match.group(1).split(", ") if item]
        return "[" + ", ".join(sorted(items)) + "]"
    return line


def _is_noise(line: str) -> bool:
    return not line.strip() or line.startswith("SLF4J:") or line == "WATCHER::"


def parse(raw: str, base: str, commands: list, unordered: set, exit_code: int) -> Transcript:
    """Split zkCli's merged output into per-command sections and the watch events."""
    events = []
    sections = []
    current: list = []
    step = 0
    expected_marker = _marker_line(base, step)
    for line in raw.splitlines():
        line = line.rstrip()
        if _is_noise(line):
            continue
        event = _WATCHED_EVENT.match(line)
        if event:
            # The close at `quit` races with the JVM's exit; it is not the server's doing.
            if event.group(1) != "Closed":
                events.append(line)
            continue
        if line == expected_marker:
            if step > 0:
                command = commands[step - 1]
                lines = [normalise_line(x) for x in current]
                if command in unordered:
                    lines.sort()
                sections.append((command, lines))
            current = []
            step += 1
            expected_marker = _marker_line(base, step)
            continue
        current.append(line)
    if step != len(commands) + 1:
        raise AssertionError(
            f"zkCli output ended after {max(step - 1, 0)} of {len(commands)} commands:\n{raw}"
        )
    return Transcript(sections, events, exit_code)


def script_for(base: str, commands: list) -> str:
    lines = [f"stat {marker_path(base, 0)}"]
    for step, command in enumerate(commands, start=1):
        lines.append(command)
        lines.append(f"stat {marker_path(base, step)}")
    lines.append("quit")
    return "\n".join(lines) + "\n"


def run_script(hosts: str, base: str, commands: list, unordered: set = frozenset()) -> Transcript:
    """Run `commands` in one zkCli session against `hosts` and return the parsed transcript.
    The script is sent once the client is connected: commands typed before that can fail
    with ConnectionLoss when the first connection attempt is slow, which is the client's
    business, not the server's."""
    session = InteractiveSession(hosts, base)
    try:
        session.wait_for_line("state:SyncConnected type:None")
        session.process.stdin.write(script_for(base, commands))
        session.process.stdin.close()
        exit_code = session.process.wait(timeout=SCRIPT_DEADLINE_S)
        session.join_output()
    finally:
        session.close()
    return parse("\n".join(session.output), base, commands, set(unordered), exit_code)


def differences(expected: Transcript, actual: Transcript, ignore=frozenset()) -> list:
    """Human-readable differences, command by command (except the commands in `ignore`);
    empty when the transcripts agree."""
    found = []
    for (command, want), (_, got) in zip(expected.sections, actual.sections):
        if want != got and command not in ignore:
            found.append(f"`{command}`:\n  reference: {want}\n  target:    {got}")
    if expected.events != actual.events:
        found.append(
            "watch events:\n  reference: "
            + "\n             ".join(expected.events)
            + "\n  target:    "
            + "\n             ".join(actual.events)
        )
    if expected.exit_code != actual.exit_code:
        found.append(f"exit code: reference {expected.exit_code}, target {actual.exit_code}")
    return found


class InteractiveSession:
    """A zkCli process fed one command at a time, for tests that act between commands."""

    def __init__(self, hosts: str, base: str):
        self.base = base
        self._step = 0
        self._lines: queue.Queue = queue.Queue()
        self.seen: list = []  # lines consumed by wait_for_line
        self.output: list = []  # every line printed, in order
        self.process = subprocess.Popen(
            [str(servers.ZKCLI), "-server", hosts],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            env=_env(),
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            line = line.rstrip("\n")
            self.output.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def join_output(self) -> None:
        """Wait (bounded) until everything the exited process printed has been read."""
        self._reader.join(timeout=LINE_WAIT_S)

    def wait_for_line(self, wanted: str, timeout: float = LINE_WAIT_S) -> list:
        """Consume output until a line containing `wanted`; return the lines before it."""
        before = []
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(
                    f"zkCli printed no line containing {wanted!r} within {timeout}s; "
                    f"last lines: {self.seen[-20:]}"
                ) from None
            if line is None:
                raise AssertionError(
                    f"zkCli exited before printing {wanted!r}; last lines: {self.seen[-20:]}"
                )
            self.seen.append(line)
            if wanted in line:
                return before
            before.append(line)

    def run(self, command: str) -> list:
        """Send one command and return the lines printed until it finished."""
        self._step += 1
        marker = marker_path(self.base, self._step)
        self.process.stdin.write(f"{command}\nstat {marker}\n")
        self.process.stdin.flush()
        return self.wait_for_line(f"Node does not exist: {marker}")

    def close(self) -> None:
        """Quit, and stop the process by its PID if it does not exit."""
        try:
            if self.process.poll() is None and not self.process.stdin.closed:
                self.process.stdin.write("quit\n")
                self.process.stdin.flush()
                self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
