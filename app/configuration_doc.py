"""docs/configuration.md, generated from the settings' own declarations (app/config.py)."""

from __future__ import annotations

from app.config import OTHER, shown_default, variables

HEADER = """# Configuration

Generated from `app/config.py` by `flask docs write`; a test fails when it is stale. Every
setting comes from an environment variable; the defaults suit a developer's machine, and
`APP_ENV=production` refuses the ones that would be unsafe there (see the README's
production section).

"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render() -> str:
    lines = [HEADER, "## The app (`app/config.py`)\n\n",
             "| variable | default | meaning |\n|---|---|---|\n"]
    for f in variables():
        lines.append(f"| `{f.metadata['env']}` | {_cell(shown_default(f))} | "
                     f"{_cell(f.metadata['doc'])} |\n")
    lines += ["\n## Read elsewhere\n\n", "| variable | default | read by | meaning |\n",
              "|---|---|---|---|\n"]
    for v in OTHER:
        lines.append(f"| `{v.env}` | `{v.default}` | {v.read_by} | {_cell(v.doc)} |\n")
    return "".join(lines)
