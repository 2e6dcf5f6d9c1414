"""Many hosts at once: inventory, rollout (canary, batches, stop, resume), the per-host run
and the fleet report (data; ``display`` renders it).

May import: ``run`` and everything below it.
"""
