"""Soak and fault-injection suite: one server process, many cycles, crashes and full disks."""
