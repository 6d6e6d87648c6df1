"""Discrete-event (SimPy) model of a distributed DLRM training step; see :mod:`planner.sim.engine`."""
