"""The generated parts of docs/: the settings table of docs/configuration.md, read from the pydantic-settings
classes, and the results table of docs/performance.md, read from the committed benchmark JSON (bench/results/).

A dev tool like bench/ and devstack/: outside the distribution and the image, imported by nothing at run time.
`python -m docsgen` rewrites the marked regions; `python -m docsgen --check` fails when a page has drifted.
"""
