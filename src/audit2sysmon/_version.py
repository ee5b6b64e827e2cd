"""The package's version, in one place (the command's `--version`, EventID 4's Version)."""

__all__ = ["__version__"]

__version__ = "0.1.0"
