"""The workflow notebooks (jupytext percent scripts) and their runner, :mod:`notebooks.run`."""
