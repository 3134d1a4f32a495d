"""Count log lines matching a pattern that were appended since the previous sample.

The first sample only sets the baseline (the file's inode and size) and counts
nothing: a log holds months of history, and counting it all would page for old
errors every time tocsin restarts. Each later sample reads only the bytes
appended since, up to the last complete line (a line still being written is
left for the next sample), and counts its lines with `grep -a -c -E -i`. A file
that shrank or has another inode was rotated: it is counted from its start. A
missing file has no lines (WordPress creates debug.log on the first error); when
it appears, all its lines are new. The cursor only moves when a sample succeeds,
so lines appended during a failed run are counted by the next good one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from probes.result import Measurement, Observation, Status
from probes.thresholds import Threshold, measure

# $1 path, $2 offset (or "baseline"), $3 inode of the previous sample, $4 pattern.
# Prints "INODE START END COUNT" (bytes START..END were counted) or "missing".
_SCRIPT = r"""
f=$1 off=$2 seen=$3 pattern=$4
[ -e "$f" ] || { echo missing; exit 0; }
[ -r "$f" ] || { echo "$f: permission denied" >&2; exit 2; }
st=$(stat -L -c '%i %s' -- "$f") || exit 2
inode=${st% *} size=${st#* }
if [ "$off" = baseline ]; then echo "$inode $size $size 0"; exit 0; fi
if [ "$inode" != "$seen" ] || [ "$size" -lt "$off" ]; then off=0; fi
end=$size
if [ "$end" -gt "$off" ] && [ -n "$(tail -c +"$end" -- "$f" | head -c 1)" ]; then
  part=$(tail -c +"$((off + 1))" -- "$f" | head -c "$((end - off))" | tail -n 1 | wc -c)
  end=$((end - part))
fi
count=$(tail -c +"$((off + 1))" -- "$f" | head -c "$((end - off))" | grep -a -c -E -i -e "$pattern")
[ $? -le 1 ] || exit 2
echo "$inode $off $end $count"
"""


@dataclass(frozen=True)
class LogCursor:
    """Where the previous sample stopped: the file's inode and a byte offset after a newline."""

    inode: str
    offset: int


class LogCounter:
    """Counts new matching lines of one file; keeps its cursor between samples."""

    def __init__(self, path: str, pattern: str, threshold: Threshold | None) -> None:
        self.path = path
        self.pattern = pattern
        self.threshold = threshold
        self.cursor: LogCursor | None = None
        self._started = False

    def argv(self) -> list[str]:
        """The remote command for the next sample: one round trip, arguments never parsed."""
        if not self._started:
            offset, inode = "baseline", "-"
        elif self.cursor is None:  # the file was missing: whatever appears is new
            offset, inode = "0", "-"
        else:
            offset, inode = str(self.cursor.offset), self.cursor.inode
        return ["sh", "-c", _SCRIPT, "tocsin-log", self.path, offset, inode, self.pattern]

    def observe(
        self, stdout: str, stderr: str, exit_status: int | None, evidence: Sequence[tuple[str, str]]
    ) -> Observation:
        """Judge one sample's output and move the cursor when it is understood."""
        evidence = tuple(evidence)
        words = stdout.split()
        if exit_status == 0 and words == ["missing"]:
            self._started = True
            self.cursor = None
            value = measure("value", 0, "", self.threshold)
            return self._verdict(value, f"{self.path} does not exist (no lines)", evidence)
        if exit_status != 0 or len(words) != 4 or not all(w.isdigit() for w in words):
            detail = stderr.strip().splitlines()[-1] if stderr.strip() else f"output {stdout!r}"
            reason = f"cannot count lines of {self.path}: {detail}"
            return Observation(Status.ERROR, reason[:300], evidence=evidence)
        inode, start, end, count = words[0], int(words[1]), int(words[2]), int(words[3])
        previous, first = self.cursor, not self._started
        self._started = True
        self.cursor = LogCursor(inode, end)
        if first:
            reason = f"baseline set: counting lines appended to {self.path} after byte {end}"
            return Observation(Status.OK, reason, evidence=evidence)
        if previous is not None and (inode != previous.inode or start < previous.offset):
            evidence += (
                ("rotation", f"{self.path} was replaced or truncated; read from its start"),
            )
        evidence += (("read", f"bytes {start} to {end} of {self.path}"),)
        value = measure("value", count, "", self.threshold)
        lines = "line" if count == 1 else "lines"
        found = f"{count} new {lines} matching '{self.pattern}' in {self.path}"
        return self._verdict(value, found, evidence)

    @staticmethod
    def _verdict(
        value: Measurement, found: str, evidence: tuple[tuple[str, str], ...]
    ) -> Observation:
        if value.met is False:
            return Observation(
                Status.FAIL, f"{found} (expected {value.expected})", (value,), evidence
            )
        return Observation(Status.OK, found, (value,), evidence)
