"""Book tests: build with warnings as errors, offline HTML, headless browser.

A package on purpose: without this file pytest imports tests/book/conftest.py
as the top-level module `conftest`, shadowing tests/conftest.py for the unit
tests that do `from conftest import ...`.
"""
