# Set-up: make hebblib importable (in Colab: install it), then this chapter's imports, seed, device and plots.
# (The same first lines in every chapter: notebooks/src/_setup_cell.py, inserted by scripts/build_notebooks.py.)
import importlib, importlib.util, pathlib, sys
if importlib.util.find_spec("hebblib") is None:
    if (pathlib.Path.cwd().parent / "hebblib").is_dir():  # a clone: this notebook runs in its notebooks/ folder
        sys.path.insert(0, str(pathlib.Path.cwd().parent))
    else:  # Colab, or any Python without hebblib: install it, with its CIFAR-10 subset, from the project
        %pip install --quiet "{requirement}"
        importlib.invalidate_caches()

%matplotlib inline
