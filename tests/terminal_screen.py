"""A terminal, emulated for tests: what a screen shows after text with backspaces and
carriage returns is written to it."""


def screen(raw, start=""):
    """The terminal's lines after ``raw`` is written to it (cursor at the end of ``start``):
    backspace moves the cursor left, carriage return to the line's start, characters
    overwrite what is under the cursor.  Returns (lines, cursor column)."""
    lines, col = [list(start)], len(start)
    for char in raw:
        if char == "\n":
            lines.append([])
            col = 0
        elif char == "\r":
            col = 0
        elif char == "\b":
            col = max(col - 1, 0)
        else:
            line = lines[-1]
            line.extend(" " * (col + 1 - len(line)))
            line[col] = char
            col += 1
    return ["".join(line).rstrip() for line in lines], col
