"""Helpers every layer uses: atomic files, plain values, class imports. They import nothing of the package."""
