"""Reading a config file: bounded in size, time and depth, and strict YAML, every failure one ConfigError line.

The file may be anything an operator or a broken deploy leaves at the path (a FIFO, /dev/zero, a folder, a
file of gigabytes) and is read again on every SIGHUP of a live till, after its run has stopped: a read that
blocks or grows without bound there leaves the till without a camera until systemd's watchdog kills it.
"""

from __future__ import annotations

import os
import reprlib
import stat
from pathlib import Path

import yaml

from edge.errors import ConfigError

# config.yaml with every setting and comment is 12 KB. PyYAML is pure Python: the slowest 256 KiB (a flow
# list of one-letter items) takes about 5 s, and a file of 3 MB took minutes, 300 MB gigabytes.
MAX_BYTES = 256 * 1024

SHORT = reprlib.Repr()  # a bad value is shown, never dumped whole (Python 3.11 takes no arguments here)
SHORT.maxlevel, SHORT.maxlist, SHORT.maxstring, SHORT.maxother = 2, 4, 60, 60


def one_line(text: str) -> str:
    """`text` with its control characters escaped: a path or key holding a newline must not split the error
    line (journald, `agecam config check` in install.sh) in two."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def expand_home(chosen: str | os.PathLike[str]) -> Path:
    try:
        return Path(chosen).expanduser()
    except RuntimeError:  # "~nouser/config.yaml": pathlib raised a traceback (exit 1)
        raise ConfigError(f"{one_line(str(chosen))}: no such user's home folder: give the config file's path") from None


_KINDS = {stat.S_IFDIR: "a folder", stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a device", stat.S_IFBLK: "a device"}


def read_text(file: Path) -> str:
    """The file's text: a regular file of at most MAX_BYTES of UTF-8."""
    shown = one_line(str(file))
    try:
        # O_NONBLOCK: opening a FIFO that no one writes to blocked forever (the reload of a live till too).
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        raise ConfigError(f"{shown}: cannot read the config file ({error.strerror}): check the path") from None
    except ValueError:  # a NUL: never from argv or the environment, but load_config() may be given one
        raise ConfigError(f"{shown}: not a path (it holds a NUL character): check the path") from None
    mode = os.fstat(fd).st_mode  # of what was opened, not of what the path names a moment later
    if not stat.S_ISREG(mode):  # /dev/zero and /dev/urandom read gigabytes, a FIFO waits for a writer
        os.close(fd)
        kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise ConfigError(f"{shown}: is {kind}, not a config file: give the path of the YAML file")
    with os.fdopen(fd, "rb") as stream:
        try:
            data = stream.read(MAX_BYTES + 1)
        except OSError as error:  # EIO, say
            raise ConfigError(f"{shown}: cannot read the config file ({error.strerror}): check the path") from None
    if len(data) > MAX_BYTES:
        raise ConfigError(
            f"{shown}: larger than {MAX_BYTES // 1024} KiB, far more than any config (config.yaml with every "
            "setting is 12 KB): check that the path names the config file"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{shown}: not UTF-8 text (byte {error.start}): save it as UTF-8") from None


class _Refused(Exception):
    """YAML that is valid but refused: the line it is on and what to do."""

    def __init__(self, mark: yaml.Mark, problem: str) -> None:
        super().__init__(f"line {mark.line + 1}: {problem}")
        self.line, self.problem = mark.line + 1, problem


# Deeper than any setting (review.accounts.NAME.role is 4): PyYAML composes recursively, so a few KB of
# brackets would otherwise end in a RecursionError traceback.
_MAX_DEPTH = 16
_ALIASES = "YAML anchors and aliases (&name, *name) are not allowed: write the value out"
_STR, _MERGE = "tag:yaml.org,2002:str", "tag:yaml.org,2002:merge"
_WHAT = {"int": "a number", "float": "a number", "timestamp": "a date", "bool": "true/false", "null": "empty"}


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without anchors and aliases (500 bytes of nested aliases expand to gigabytes once validated),
    without duplicate keys (PyYAML keeps the last one silently, so a setting written twice would be lost), and
    without nesting deeper than any setting."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _Refused(event.start_mark, _ALIASES)
        if self._depth >= _MAX_DEPTH:
            raise _Refused(event.start_mark, f"nested deeper than {_MAX_DEPTH} levels, deeper than any setting")
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> object:
        # PyYAML lets Python's own errors out: `2026-02-30` (a date), `!!int abc`, an integer of 5000 digits.
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as error:
            kind = node.tag.rpartition(":")[2]
            why = f" ({error})" if kind == "timestamp" else ""
            raise _Refused(
                node.start_mark,
                f"{SHORT.repr(node.value)} cannot be read as {_WHAT.get(kind, kind)}{why}: fix it, or quote it if "
                "it is text",
            ) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:  # `<<` overrides keys as silently as a duplicate, and serves only aliases
                raise _Refused(key_node.start_mark, "merge keys (<<) are not allowed: write the settings out")
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _STR:
                # `1234:` (an account) is a number, `on:` true: pydantic then named the key `1` or `True`.
                if isinstance(key_node, yaml.ScalarNode):
                    kind = key_node.tag.rpartition(":")[2]
                    problem = f"the key {SHORT.repr(key_node.value)} reads as {_WHAT.get(kind, kind)}, not a name"
                    raise _Refused(key_node.start_mark, f"{problem}: quote it")
                raise _Refused(key_node.start_mark, "a key here is a list or mapping, not a name: write a name")
            if key_node.value in seen:
                raise _Refused(key_node.start_mark, f"key '{key_node.value}' is given twice: keep one")
            seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, shown: str) -> object:
    """The YAML document in `text`, read from the file `shown`."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader without aliases or duplicate keys
    except _Refused as refused:
        raise ConfigError(f"{shown}: line {refused.line}: {one_line(refused.problem)}") from None
    except yaml.reader.ReaderError as error:  # a control character: the error had no line
        line = text.count("\n", 0, error.position) + 1
        raise ConfigError(
            f"{shown}: line {line}: the character U+{error.character:04X} is not allowed in YAML: remove it"
        ) from None
    except yaml.YAMLError as error:
        mark, problem = getattr(error, "problem_mark", None), getattr(error, "problem", None)
        where = (f" at line {mark.line + 1}" if mark else "") + (f" ({problem})" if problem else "")
        raise ConfigError(f"{shown}: not valid YAML{where}: fix the syntax") from None
