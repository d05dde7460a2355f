"""Training in this process: the composed trainer (its base, telemetry mixin and composer) and the
train/resume entry points the launcher spawns.
"""
