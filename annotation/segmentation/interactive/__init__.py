"""The interactive loop, one package: a typed :class:`~.request.MaskRequest`, the Redis keys
(:mod:`.keys`), routing to workers (:mod:`.dispatch`), what methods declare (:mod:`.methods`),
the worker's models and per-image cache (:mod:`.worker`, :mod:`.cache`, :mod:`.trained`) and
the generic compute step (:mod:`.compute`: prompt rows → typed prompts → ``predict_objects``).

The socket side (prompt log, instances) stays in ``annotation.labeling``, which calls in here.
"""
