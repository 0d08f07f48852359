"""Fuzz harnesses for the ``.ohr`` readers (see ``ohr_targets.py`` and ``fuzz_ohr.py``)."""
