"""The documentation site (mkdocs.yml, docs/) builds with `mkdocs build --strict`, and its
API reference documents every public name of neurojax.

Both need the `docs` extra (`pip install -e ".[docs]"`) and are skipped, with that
reason, without it: the site's tools are not dependencies of the library or its tests.
"""

import ast
import importlib
import importlib.util
import os
import pathlib
import re
import subprocess
import sys
import types

import pytest

import neurojax as nj

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site built once for the tests of this file (a few seconds)."""
    for module in ("mkdocs", "material", "mkdocstrings_handlers.python",
                   "griffe_public_redundant_aliases"):
        pytest.importorskip(module, reason=f"{module} not installed: the docs extra "
                            f"(pip install -e '.[docs]') builds the documentation site")
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},  # no end-of-life banner
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def test_mkdocs_build_strict_passes(site):
    assert (site / "index.html").exists()
    for page in ("getting-started", "concepts", "guides/custom-neuron",
                 "guides/custom-input", "guides/recording", "benchmarks", "api/network"):
        assert (site / page / "index.html").exists(), page
    # Every tutorial script is rendered as a page, with its code.
    for script in (ROOT / "tutorials").glob("[!_]*.py"):
        page = site / "tutorials" / script.stem / "index.html"
        assert page.exists(), script.name
        assert "import" in page.read_text() and "# %%" not in page.read_text(), script.name
    # The guides include their runnable files (snippets), not a stale copy.
    neuron = (site / "guides" / "custom-neuron" / "index.html").read_text()
    assert "QIFState" in neuron and "--8&lt;--" not in neuron
    inputs = (site / "guides" / "custom-input" / "index.html").read_text()
    assert "TelegraphState" in inputs and "--8&lt;--" not in inputs
    assert "Anchor simulators" in (site / "benchmarks" / "index.html").read_text()


def _exports(path: pathlib.Path) -> list[str]:
    """Names a module re-exports deliberately: `from x import Name as Name` (STYLE.md
    section 9)."""
    names = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom):
            names += [a.name for a in node.names if a.asname == a.name]
    return names


def _submodules() -> list[str]:
    """The public submodules that `import neurojax` alone leaves in `dir(nj)`, taken in a
    fresh process: in this one, other tests import more (`neurojax.cli`)."""
    code = ("import types, neurojax as nj; print(' '.join(n for n, m in vars(nj).items() if "
            "isinstance(m, types.ModuleType) and not n.startswith('_') "
            "and m.__name__.startswith('neurojax.')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=True)
    return done.stdout.split()


def _public_names() -> dict[str, list[str]]:
    """`{module: names}` for `neurojax` and each public submodule (the ones `dir(nj)`
    holds). A package's public names are its `X as X` re-exports; a single-file module's
    are the names defined in it without a leading underscore, plus its re-exports."""
    found = {"neurojax": [n for n in _exports(ROOT / "neurojax" / "__init__.py")
                          if not isinstance(getattr(nj, n), types.ModuleType)]}
    for name in _submodules():
        module = importlib.import_module(f"neurojax.{name}")
        path = pathlib.Path(module.__file__)
        names = _exports(path)
        if path.name != "__init__.py":
            names += [n for n, obj in vars(module).items() if not n.startswith("_")
                      and getattr(obj, "__module__", None) == module.__name__]
        found[module.__name__] = sorted(set(names))
    return found


def test_every_public_name_is_in_the_api_reference(site):
    ids = set()
    for page in (site / "api").rglob("index.html"):
        ids |= set(re.findall(r'id="(neurojax[\w.]*)"', page.read_text()))
    public = _public_names()
    # The public submodules are those neurojax/__init__.py re-exports; today's at least.
    assert {"neurojax.neurons", "neurojax.synapses", "neurojax.connectivity",
            "neurojax.inputs", "neurojax.surrogate", "neurojax.analysis", "neurojax.io", "neurojax.ode",
            "neurojax.sharding", "neurojax.gallery", "neurojax.train",
            "neurojax.plasticity"} <= set(public)
    missing = []
    for module, names in public.items():
        for name in names:
            obj = getattr(importlib.import_module(module), name)
            # Documented under any public path of the same object: where it is
            # exported, at its home (nj.sweep, a function that shadows its module), or
            # in another public module that exports it (nj.check_grad in nj.train).
            paths = {f"{m}.{name}" for m in public
                     if getattr(importlib.import_module(m), name, None) is obj}
            paths.add(f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}")
            if not paths & ids:
                missing.append(f"{module}.{name}")
    assert not missing, f"not in the API reference (docs/api/): {missing}"


def test_tutorial_pages_show_the_figure_once_the_script_has_run(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs not installed: the docs extra "
                        "(pip install -e '.[docs]') builds the documentation site")
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "_hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    script = tmp_path / "demo.py"
    script.write_text("# %% [markdown]\n# # A demo\n#\n# Text.\n\n# %%\nx = 1\n")
    page = hooks.tutorial_markdown(script)
    assert "# A demo\n\nText." in page and "```python\nx = 1\n```" in page
    assert "appears here when the site is built after running" in page
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "demo.png").write_bytes(b"\x89PNG")
    assert "![The figure of tutorials/demo.py](demo.png)" in hooks.tutorial_markdown(script)
