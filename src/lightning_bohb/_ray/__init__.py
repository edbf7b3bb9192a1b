"""Every patch to Ray Tune's private internals, fenced in one package.

`internals` holds each reach into Ray's privates (checked against the installed Ray by
``tests/unit/test_ray_internals.py``); the other modules build on it: the atomic storage filesystem,
the scheduler-state callback (ray#30838) and the resumable BOHB scheduler (ray#39900). Only the
session runner, the pause coordinator and the strategies import this package.
"""
