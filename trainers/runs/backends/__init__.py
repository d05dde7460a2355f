"""Where a run's training process runs: ``local`` (a detached process on this machine) or ``ray`` (a Ray
job, through the ``ray_cluster`` primitives). Only :mod:`trainers.runs` imports these.
"""
