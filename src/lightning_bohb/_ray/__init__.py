"""Every patch to Ray Tune's private internals, fenced in one package.

One module a concept: the hooks of ``tune.run`` (`tune_run`), the controller and its trials
(`tune_controller`), the scheduler's hooks (`scheduler_hooks`) and state (`scheduler_state`, ray#30838),
the search budget on restore (`search_budget`), the experiment snapshots (`snapshot_journal`, copied by
`incremental_copy`), the atomic storage filesystem, Ray's start and shutdown, and the resumable BOHB
scheduler (ray#39900); a patch that replaces an object's class goes through `class_swap`. What they
reach into is checked against the installed Ray by ``tests/unit/test_ray_internals.py``. Only the
session runner, the pause coordinator and the strategies import this package.
"""
