"""The one seam between the platform and ``inference``.

Only this package imports ``inference`` (and through it torch), and only inside functions, so
the web process, which imports the rest of ``annotation``, never loads torch.
"""
