"""Every ```python block of the README runs as shown.

Blocks run section by section (a section is the text under one heading): each
section's blocks one after another in one namespace, so a block may use what an
earlier block of its section defined, in a child process with a time limit, in
an empty temporary folder (so files the blocks write land there).
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
RUNNER = """
import json, sys, traceback
blocks = json.loads(sys.stdin.read())
namespace = {"__name__": "__readme__"}
for i, code in enumerate(blocks):
    try:
        exec(compile(code, f"README block {i + 1} of this section", "exec"), namespace)
    except BaseException:
        print(f"block {i + 1} of {len(blocks)} failed:\\n{code}\\n{traceback.format_exc()}", file=sys.stderr)
        sys.exit(1)
"""


def python_blocks() -> dict[str, list[str]]:
    """Heading -> the ```python blocks under it, in order (headings inside code blocks are not headings)."""
    sections: dict[str, list[str]] = {}
    heading, block, fence = "(top)", None, None
    for line in README.read_text(encoding="utf-8").splitlines():
        if fence is None and re.match(r"#{1,6} ", line):
            heading = line.lstrip("#").strip()
        elif fence is None and line.startswith("```"):
            fence = line[3:].strip()
            block = [] if fence == "python" else None
        elif fence is not None and line.startswith("```"):
            if block is not None:
                sections.setdefault(heading, []).append("\n".join(block) + "\n")
            fence, block = None, None
        elif block is not None:
            block.append(line)
    return sections


SECTIONS = python_blocks()


def test_the_readme_has_python_blocks():
    assert sum(map(len, SECTIONS.values())) >= 5


@pytest.mark.parametrize("heading", list(SECTIONS))
def test_readme_python_blocks_run(heading, tmp_path):
    done = subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps(SECTIONS[heading]), text=True,
                          capture_output=True, cwd=tmp_path, timeout=180)
    assert done.returncode == 0, f"README section {heading!r}: {done.stderr[-3000:]}"
