"""Writing to the terminal: lines, separators and colours, and whether to colour at all."""

from __future__ import annotations

import os
import shutil
import sys
from typing import TextIO

_CODES = {"red": 31, "green": 32, "yellow": 33, "blue": 34, "cyan": 36, "bold": 1}


def should_color(file: TextIO, setting: str = "auto") -> bool:
    """``--color yes|no`` wins; then ``NO_COLOR`` (off), ``FORCE_COLOR`` (on), ``TERM=dumb`` (off), a terminal."""
    if setting in ("yes", "no"):
        return setting == "yes"
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(file, "isatty", None)
    return bool(isatty and isatty())


class TerminalWriter:
    """Writes lines, separators and colours to a stream; knows the width of the terminal."""

    def __init__(self, file: TextIO | None = None, color: bool | None = None) -> None:
        self.file = file or sys.stdout
        self.color = should_color(self.file) if color is None else color
        columns = shutil.get_terminal_size(fallback=(80, 24)).columns
        self.fullwidth = columns if columns >= 40 else 80
        self.width_of_current_line = 0

    def markup(self, text: str, **marks: bool) -> str:
        codes = [str(_CODES[name]) for name, on in marks.items() if on and name in _CODES]
        if not self.color or not codes or not text:
            return text
        return f"\x1b[{';'.join(codes)}m{text}\x1b[0m"

    def write(self, text: str, flush: bool = False, **marks: bool) -> None:
        if not text:
            return
        out = self.markup(text, **marks)
        try:
            self.file.write(out)
        except UnicodeEncodeError:
            # A terminal (or pipe) whose encoding cannot show a name ('läufer' on ASCII): escape, never crash.
            encoding = getattr(self.file, "encoding", None) or "ascii"
            self.file.write(out.encode(encoding, "backslashreplace").decode(encoding))
        last = text.rsplit("\n", 1)
        self.width_of_current_line = (
            len(last[-1]) if len(last) > 1 else self.width_of_current_line + len(text)
        )
        if flush:
            self.file.flush()

    def line(self, text: str = "", **marks: bool) -> None:
        self.write(text, **marks)
        self.write("\n")

    def sep(self, char: str, title: str = "", **marks: bool) -> None:
        width = self.fullwidth - 1
        if title:
            fill = max((width - len(title) - 2) // (2 * len(char)), 1)
            text = f"{char * fill} {title} {char * fill}"
            text += char * ((width - len(text)) // len(char)) if len(text) < width else ""
        else:
            text = char * (width // len(char))
        self.line(text, **marks)

    def flush(self) -> None:
        self.file.flush()
