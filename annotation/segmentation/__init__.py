"""The one seam between the platform and ``inference``.

Only this package imports ``inference`` (and through it torch), and only inside functions, so
the web process, which imports the rest of ``annotation``, never loads torch. Three parts:
``interactive`` (the click loop), ``batch`` (pseudo-label and training jobs, model imports) and
``bench`` (data and entry points of the benchmarks).
"""
