"""mkdocs hooks (mkdocs.yml `hooks:`): pages generated at build time.

- `api/<module>.md`, one page per public submodule of `neurojax` (`nj.neurons`,
  `nj.synapses`, ...), each a mkdocstrings directive. A submodule is public when
  `neurojax/__init__.py` re-exports it (`from . import neurons as neurons`), so a new one
  (`nj.theory`, `nj.plasticity`) gets its page, and its place in the nav, without any
  edit here; a hand-written `docs/api/<module>.md` takes precedence over the generated
  page.
- `tutorials/<name>.md`, one page per jupytext percent script in `tutorials/`: markdown
  cells as text, code cells as Python blocks, and the figure the script saves
  (`tutorials/figures/<name>.png`) where it exists. The scripts are not run here (the
  test suite runs them); run them first (`python tutorials/<name>.py --quick`) for a
  site with figures.
- `benchmarks.md` is `benchmarks/README.md`.

Everything is read with `ast` and plain text, not imported, so the build does not import
jax and stays fast.
"""

from __future__ import annotations

import ast
import pathlib
import re

from mkdocs.structure.files import File

ROOT = pathlib.Path(__file__).resolve().parent.parent

# The order of the generated API pages in the nav; public submodules not listed here
# (a new one) follow in alphabetical order.
API_ORDER = [
    "neurons", "synapses", "connectivity", "inputs", "surrogate", "analysis", "io", "ode",
    "sharding", "gallery", "train", "plasticity", "theory",
]
API_TITLES = {
    "io": "NWB files (nj.io)",
    "ode": "ODE integration (diffrax)", "sharding": "Sharding across devices",
    "surrogate": "Surrogate gradients",
}


def public_submodules() -> list[str]:
    """The submodules that `neurojax/__init__.py` re-exports as `from . import X as X`."""
    tree = ast.parse((ROOT / "neurojax" / "__init__.py").read_text())
    found = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module is None:
            found += [a.name for a in node.names if a.asname == a.name]
    rank = {name: i for i, name in enumerate(API_ORDER)}
    return sorted(found, key=lambda name: (rank.get(name, len(rank)), name))


def _api_page(name: str) -> str:
    title = API_TITLES.get(name, f"`nj.{name}`")
    return f"# {title}\n\n::: neurojax.{name}\n    options:\n      show_root_heading: false\n"


def figure(path: pathlib.Path) -> pathlib.Path:
    """Where the tutorial script `path` saves its figure."""
    return path.parent / "figures" / f"{path.stem}.png"


def tutorial_markdown(path: pathlib.Path) -> str:
    """A jupytext percent script as markdown: `# %% [markdown]` cells lose their
    comment marks, `# %%` cells become Python blocks; the jupytext header is dropped.
    The script's figure follows when it has been run."""
    text = path.read_text()
    text = re.sub(r"\A# ---\n(#.*\n)*?# ---\n", "", text)
    parts = re.split(r"^# %%(.*)$", text, flags=re.M)
    out = [f"*Source: `tutorials/{path.name}`; run it with "
           f"`python tutorials/{path.name} --quick`.*\n"]
    for marker, body in zip(parts[1::2], parts[2::2]):
        body = body.strip("\n")
        if not body.strip():
            continue
        if "[markdown]" in marker:
            out.append("\n".join(re.sub(r"^# ?", "", line) for line in body.splitlines()))
        else:
            out.append(f"```python\n{body}\n```")
    if parts[0].strip():
        out.insert(1, f"```python\n{parts[0].strip()}\n```")
    out.append("## Figure")
    if figure(path).exists():
        out.append(f"![The figure of tutorials/{path.name}]({path.stem}.png)")
    else:
        out.append(f"*The figure appears here when the site is built after running "
                   f"`python tutorials/{path.name} --quick`.*")
    return "\n\n".join(out) + "\n"


def tutorials() -> list[pathlib.Path]:
    return sorted(p for p in (ROOT / "tutorials").glob("*.py") if not p.name.startswith("_"))


def _title(markdown: str, fallback: str) -> str:
    match = re.search(r"^# (.+)$", markdown, flags=re.M)
    return match.group(1).strip() if match else fallback


def on_config(config):
    nav = config["nav"]
    for section in nav:
        if not isinstance(section, dict):
            continue
        if "API reference" in section:
            section["API reference"] += [
                {API_TITLES.get(name, f"nj.{name}"): f"api/{name}.md"}
                for name in public_submodules()
            ]
        elif "Tutorials" in section:
            section["Tutorials"] = [
                {_title(tutorial_markdown(p), p.stem): f"tutorials/{p.stem}.md"}
                for p in tutorials()
            ]
    return config


def on_files(files, config):
    docs = pathlib.Path(config["docs_dir"])
    for name in public_submodules():
        uri = f"api/{name}.md"
        if not (docs / uri).exists():
            files.append(File.generated(config, uri, content=_api_page(name)))
    for path in tutorials():
        files.append(File.generated(config, f"tutorials/{path.stem}.md",
                                    content=tutorial_markdown(path)))
        if figure(path).exists():
            files.append(File.generated(config, f"tutorials/{path.stem}.png",
                                        abs_src_path=str(figure(path))))
    files.append(File.generated(config, "benchmarks.md",
                                content=(ROOT / "benchmarks" / "README.md").read_text()))
    return files
