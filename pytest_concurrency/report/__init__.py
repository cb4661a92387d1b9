"""Reports of concurrent runs: what each test × mode measured and found.

``document.py`` defines the schema-1 JSON document every format is rendered
from (terminal.py, markdown.py, html.py); ``files.py`` writes files atomically
under a lock; ``baseline.py`` stores and compares against earlier runs;
``compare.py`` holds the comparison rules the baseline and the CLI share.
"""
