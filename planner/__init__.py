"""recplan's planner: workload + hardware -> cost models -> sharding -> step simulation -> what-if.

The planner never imports torch: it reads measurement and profile files and runs anywhere.
"""

__version__ = "0.1.0"
